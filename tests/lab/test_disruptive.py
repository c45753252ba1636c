"""The disruptive suite on the lab: every check passes, each report carries its
timeline, and link-down failover is held against the VRRP bound read from keepalived.conf."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hakit.cluster import Cluster
from hakit.faults.base import journal
from hakit.inventory import DISRUPTIVE_CHECKS
from hakit.lab.netns import Lab

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("settled")]


def test_audit_disruptive_passes_and_the_report_draws_each_timeline(lab: Lab, control: Cluster,
                                                                    tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "hakit.cli", "audit", "--disruptive", "--inventory",
                           str(lab.paths.inventory), "--reports", str(tmp_path)],
                          capture_output=True, text=True, timeout=1200)
    doc = json.loads((tmp_path / "latest" / "results.json").read_text())
    disruptive = [r for r in doc["results"] if r["check"]["disruptive"]]
    failed = {r["check"]["id"]: r["message"] for r in doc["results"] if r["outcome"] != "pass"}
    assert proc.returncode == 0 and not failed, (failed, proc.stdout[-3000:])
    assert {r["check"]["disruptive"] for r in disruptive} == set(DISRUPTIVE_CHECKS)
    assert len(disruptive) == 13   # MON-D01 runs once per scenario
    html = (tmp_path / "latest" / "audit.html").read_text()
    for r in disruptive:   # zero is the fault taking effect; the action's sending may come before it
        assert any(e["at"] == 0.0 for e in r["timeline"]) and len(r["timeline"]) >= 3, r
        assert all(e["at"] >= 0 for e in r["timeline"] if not e["what"].endswith(": sent")), r["timeline"]
        assert f'aria-label="timeline of {r["check"]["id"]}"' in html
    [link] = [r for r in disruptive if r["check"]["id"] == "VIP-D03"]
    # The bound is computed from keepalived.conf (RFC 3768: 3 adverts + skew) and judged by the check.
    bound = next(m for m in link["evidence"] if m["name"] == "VRRP master-down bound")
    assert re.fullmatch(r"3\.(59|61) s \(advert_int 1, priority 10[05] on cp[23]\)", bound["value"]), bound
    assert bound["ok"] is True, bound
    # the client's view is the headline
    for r in [r for r in disruptive if r["check"]["id"][:5] in ("VIP-D", "API-D")]:
        judged = {m["name"] for m in r["evidence"] if m["ok"] is not None and m.get("seconds") is not None}
        assert "client outage during the fault" in judged, r["evidence"]
        assert any(n.startswith("client outage after the") for n in judged), r["evidence"]   # the move back, the rejoin
        assert any(m["name"] == "time zero" for m in r["evidence"]), r["evidence"]
    # One fault, every consequence: each MON-D01 alert was followed in the fault of the check that
    # holds it anyway (an etcd follower stopped, an apiserver stopped, a worker lost).
    hosts = {r["nodeid"].split("[")[1].rstrip("]"): r["timeline"][0]["what"] for r in disruptive
             if r["check"]["id"] == "MON-D01"}
    assert {alert: what.rsplit("(held by ", 1)[-1].rstrip(")") for alert, what in hosts.items()} == {
        "etcdMembersDown": "ETCD-D01", "TargetDown": "API-D01", "KubeNodeNotReady": "WL-D01"}, hosts
    # The overlap rule: WL-D01's lost worker, its rescheduling measured, is held for its alert
    # while the API-path checks measure beside it, then released with the steady state back.
    [wl] = [r for r in disruptive if r["check"]["id"] == "WL-D01"]
    told = [e["what"] for e in wl["timeline"]]
    aside = next(i for i, w in enumerate(told) if w.startswith("set aside: held for KubeNodeNotReady while"))
    assert any(w == "fault undone" for w in told[aside:]) and told[-1].startswith("steady state back"), told
    beside = {r["check"]["id"] for r in disruptive
              if any(m["name"] == "beside a fault of another failure domain" for m in r["evidence"])}
    assert beside == {"VIP-D01", "VIP-D02", "VIP-D03", "API-D01"}, beside
    assert journal(control).pending() == []
