"""Alert delivery end to end (MON-D01) beyond the audit: the opt-in silence is
created, keeps the pager quiet and is always removed, also when the run is
interrupted; and a receiver that never gets the page fails the check there."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from breaking import run_checks, stopped, tightened
from hakit import wait
from hakit.cluster import Cluster
from hakit.faults.base import journal
from hakit.inventory import load
from hakit.lab.netns import Lab
from hakit.prometheus import Alertmanager

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("settled")]
ONE_SCENARIO = ("-k", "TargetDown")   # the quickest: about 70 s to firing


def hakit_silences(lab: Lab) -> list[dict]:
    am = Alertmanager(load(lab.paths.inventory).alertmanager_url or "")
    return [s for s in am.silences() if s.get("createdBy") == "hakit" and s["status"]["state"] != "expired"]


def test_with_silence_the_alert_reaches_alertmanager_and_nobody_is_paged(lab: Lab, control: Cluster,
                                                                         tmp_path: Path) -> None:
    code, results = run_checks(lab.paths.inventory, tmp_path, "MON-D01", disruptive=True, options=("--silence",),
                               pytest_args=ONE_SCENARIO)
    r = results["MON-D01"]
    assert code == 0 and r["outcome"] == "pass", r["message"]
    state = next(m for m in r["evidence"] if m["name"] == "state in Alertmanager")
    assert (state["value"], state["ok"]) == ("suppressed", True), r["evidence"]
    assert any("silenced: nobody paged" in str(m["value"]) for m in r["evidence"]), r["evidence"]
    assert hakit_silences(lab) == [] and journal(control).pending() == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_an_interrupted_run_leaves_no_silence(lab: Lab, control: Cluster, sig: signal.Signals) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "hakit.cli", "check", "--inventory", str(lab.paths.inventory),
                             "--disruptive", "--silence", "--check", "MON-D01", "--", *ONE_SCENARIO],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait.until(lambda: hakit_silences(lab), 120, "hakit's silence in Alertmanager")
        time.sleep(3)   # into the fault
    finally:
        proc.send_signal(sig)
        proc.wait(timeout=120)
    if sig == signal.SIGKILL:
        assert hakit_silences(lab), "SIGKILL gave the run no chance to expire its silence"
        subprocess.run([sys.executable, "-m", "hakit.cli", "repair", "--inventory", str(lab.paths.inventory)],
                       check=True, timeout=300)
    assert hakit_silences(lab) == [] and journal(control).pending() == []


def test_a_receiver_that_never_gets_the_page_fails_the_check_there(lab: Lab, tmp_path: Path) -> None:
    """An SLO of 110 s: past TargetDown's ~70 s to Alertmanager, short of waiting out the default."""
    inventory = tightened(lab, tmp_path / "inventory.yaml", alert_delivery_seconds=110)
    with stopped(lab, "mon/pager"):
        code, results = run_checks(inventory, tmp_path, "MON-D01", disruptive=True, pytest_args=ONE_SCENARIO)
    r = results["MON-D01"]
    assert code == 1 and r["outcome"] == "fail", r
    assert "TargetDown delivered to the receiver not within the 110 s SLO" in r["message"], r["message"]
    assert "TargetDown in Alertmanager at" in r["message"], r["message"]


def test_every_scenario_fails_where_its_alert_cannot_fire_within_the_slo(lab: Lab, tmp_path: Path) -> None:
    """An SLO of 20 s, shorter than every rule's `for: 1m`: each of the three scenarios (its own
    fault, as when MON-D01 runs alone) fails at the stage it could not reach, naming its alert."""
    inventory = tightened(lab, tmp_path / "inventory.yaml", alert_delivery_seconds=20)
    code, _ = run_checks(inventory, tmp_path, "MON-D01", disruptive=True)
    runs = json.loads((tmp_path / "results-MON-D01.json").read_text())["results"]
    messages = {r["check"]["id"] + r.get("nodeid", ""): r["message"] for r in runs}
    assert code == 1 and len(runs) == 3 and all(r["outcome"] == "fail" for r in runs), messages
    for alert in ("etcdMembersDown", "KubeNodeNotReady", "TargetDown"):
        assert any(f"{alert} " in m and "not within the 20 s SLO" in m for m in messages.values()), (alert, messages)
