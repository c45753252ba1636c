"""Safe to point at production, on the lab: one disruptive run per cluster, a journal
never replayed on another cluster, SIGHUP restores, learners do not count as voters,
and an audit never says more than it verified."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from breaking import etcd_of, hold_fault, run_checks
from hakit import wait
from hakit.cluster import Cluster
from hakit.etcd import Quorum
from hakit.faults.base import journal
from hakit.faults.kinds import StopComponent
from hakit.faults.lock import LEASE, NAMESPACE, Busy, micro_time
from hakit.lab.netns import Lab

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("settled")]


def _hakit(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"HAKIT_LAB_DIR": str(lab.paths.root), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    return subprocess.run([sys.executable, "-m", "hakit.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def test_a_second_run_is_refused_while_the_first_holds_a_fault_and_sighup_restores_it(lab: Lab,
                                                                                       control: Cluster) -> None:
    holder = hold_fault(lab)   # another process: stops cp3's scheduler and holds it stopped
    try:
        with pytest.raises(Busy, match=rf"another disruptive run holds .*pid {holder.pid} on "):
            with StopComponent(control, "cp2", "kube-scheduler"):
                pass
        repair = _hakit(lab, "repair")
        assert repair.returncode == 4 and "one run per cluster" in repair.stderr, repair.stderr
        assert not lab.host("cp3").is_running("kube-scheduler"), "the first run's fault was undone by the second"
        assert lab.host("cp2").is_running("kube-scheduler")
    finally:
        holder.send_signal(signal.SIGHUP)   # the operator's SSH session to the bastion drops
        holder.wait(timeout=60)
    assert lab.host("cp3").is_running("kube-scheduler") and journal(control).pending() == []


def test_a_lease_held_from_another_machine_refuses_the_run_naming_it(lab: Lab, control: Cluster) -> None:
    coord = client.CoordinationV1Api(control.api)
    now = micro_time()
    coord.create_namespaced_lease(NAMESPACE, {"metadata": {"name": LEASE}, "spec": {
        "holderIdentity": "bastion-2/4242/1", "leaseDurationSeconds": 60, "acquireTime": now, "renewTime": now}})
    try:
        with pytest.raises(Busy, match=f"Lease {NAMESPACE}/{LEASE}: pid 4242 on bastion-2, since"):
            with StopComponent(control, "cp2", "kube-scheduler"):
                pass
        refused = _hakit(lab, "check", "--disruptive", "--check", "CP-D02")   # the exit code the help documents
        assert refused.returncode == 4 and "pid 4242 on bastion-2" in refused.stdout + refused.stderr, refused
        assert lab.host("cp2").is_running("kube-scheduler")
    finally:
        coord.delete_namespaced_lease(LEASE, NAMESPACE)


def test_repair_refuses_a_journal_entry_from_another_cluster(lab: Lab, control: Cluster) -> None:
    path = control.inv.fault_journal
    before = path.read_text() if path.exists() else ""
    entry = {"event": "inject", "id": "0therc1uster", "fault": "stop etcd on cp3", "injected_at": time.time(),
             "undo": {"kind": "start", "host": "cp3", "component": "etcd"},
             "owner": {"host": socket.gethostname(), "pid": 999_999_999, "started": "1"},   # gone
             "cluster": {"kube_system_uid": "uid-of-staging", "etcd_cluster_id": "1234"}}
    path.write_text(before + json.dumps(entry) + "\n")
    try:
        out = _hakit(lab, "repair")
        assert out.returncode == 2 and "injected on another cluster" in out.stderr, out.stderr
        assert "uid-of-staging" in out.stderr and control.identity.kube_system_uid in out.stderr, out.stderr
    finally:
        path.write_text(before)


def test_a_learner_is_shown_and_never_counted_as_a_voter(lab: Lab, control: Cluster, tmp_path: Path) -> None:
    etcd = etcd_of(lab)
    learner = etcd.add_member(["https://127.0.0.1:2"], learner=True)   # added, never started
    try:
        q = Quorum.of(control.etcd_members())
        assert (q.voters, q.healthy, q.tolerance) == (3, 3, 1)
        code, results = run_checks(lab.paths.inventory, tmp_path, "ETCD-001", "ETCD-007")
        assert code == 0 and {r["outcome"] for r in results.values()} == {"pass"}, results
        shown = {m["name"]: m["value"] for m in results["ETCD-001"]["evidence"]}
        assert shown["voting members"] == 3 and "half-done `member add`" in str(shown["learners (not voting)"])
    finally:
        etcd.remove_member(learner)


def test_without_etcd_credentials_etcd_is_unverified_and_the_exit_code_says_so(lab: Lab, tmp_path: Path) -> None:
    doc = yaml.safe_load(lab.paths.inventory.read_text())
    for key in ("ca", "cert", "key"):
        doc["etcd"].pop(key)
    inv = tmp_path / "inventory.yaml"
    inv.write_text(yaml.safe_dump(doc))
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "hakit.cli", "check", "--inventory", str(inv), "--property", "etcd",
                           "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 5, proc.stdout[-2000:]
    assert json.loads(out.read_text())["verdicts"] == {"etcd": "unverified"}
    skipped = [r["check"]["id"] for r in json.loads(out.read_text())["results"] if r["outcome"] == "skip"]
    assert len(skipped) == 8, skipped   # all but ETCD-008, which reads the backup directory, not etcd
    accepted = [a for c in skipped for a in ("--accept-skip", c)]
    proc = subprocess.run([sys.executable, "-m", "hakit.cli", "check", "--inventory", str(inv), "--property", "etcd",
                           "--json", str(out), *accepted], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, "the operator said these skips are expected: what ran passed"
    assert json.loads(out.read_text())["accepted_skips"] == skipped


def test_a_read_only_audit_names_a_leftover_fault_first(lab: Lab, control: Cluster, tmp_path: Path) -> None:
    holder = hold_fault(lab)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    try:
        out = tmp_path / "r.json"
        proc = subprocess.run([sys.executable, "-m", "hakit.cli", "check", "--inventory", str(lab.paths.inventory),
                               "--check", "API-001", "--json", str(out)], capture_output=True, text=True, timeout=600)
        first = proc.stdout.splitlines()[0]
        assert "STILL IN EFFECT: stop kube-scheduler on cp3" in first, proc.stdout[:500]
        assert "hakit repair --inventory" in proc.stdout and proc.returncode == 1
        assert json.loads(out.read_text())["leftover_faults"][0].startswith("stop kube-scheduler on cp3")
    finally:
        assert _hakit(lab, "repair").returncode == 0
    assert lab.host("cp3").is_running("kube-scheduler")


def test_an_uploaded_snapshot_is_readable_by_its_owner_only(lab: Lab, control: Cluster, tmp_path: Path) -> None:
    """A snapshot holds every Secret: on the host it is 0600 from its first byte."""
    local = tmp_path / "snap.db"
    local.write_bytes(b"not really a snapshot")
    remote = lab.paths.etcd_data("cp2") / ".hakit-test-upload.db"   # lab hosts share this machine's disk
    try:
        control.upload("cp2", local, str(remote))
        assert remote.read_bytes() == local.read_bytes() and oct(remote.stat().st_mode)[-3:] == "600"
        assert not remote.with_name(remote.name + ".hakit-new").exists()
    finally:
        remote.unlink(missing_ok=True)


def test_repair_after_a_crashed_drain_uncordons_and_spreads_again_what_it_moved(lab: Lab, control: Cluster) -> None:
    """WL-D02 died mid-drain (its journal entry left open): `hakit repair` must give back the
    spread too, not only the node. Two replicas sit on w1 alone, as a drain of w2 leaves them."""
    core, apps = client.CoreV1Api(control.api), client.AppsV1Api(control.api)
    ns, labels = "hakit-drain-test", {"app": "spread"}
    path = control.inv.fault_journal
    before = path.read_text() if path.exists() else ""
    for node in ("w2", "w3"):
        control.cordon(node)
    core.create_namespace({"metadata": {"name": ns}})
    try:
        apps.create_namespaced_deployment(ns, {"metadata": {"name": "spread"}, "spec": {
            "replicas": 2, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
                "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}]}}}})

        def nodes() -> set[str]:
            return {p.spec.node_name for p in core.list_namespaced_pod(ns, label_selector="app=spread").items
                    if p.spec.node_name and p.status.phase == "Running" and not p.metadata.deletion_timestamp}
        wait.until(lambda: len(core.list_namespaced_pod(ns, field_selector="status.phase=Running").items) == 2, 60,
                   "two replicas Running")
        assert nodes() == {"w1"}
        entry = {"event": "inject", "id": "crasheddrain", "fault": "drain node w2", "injected_at": time.time(),
                 "undo": {"kind": "undrain", "host": "w2", "deployments": [f"{ns}/spread"]},
                 "owner": {"host": socket.gethostname(), "pid": 999_999_999, "started": "1"},   # gone
                 "cluster": {}}
        path.write_text(before + json.dumps(entry) + "\n")
        out = _hakit(lab, "repair")
        assert out.returncode == 0 and "undone: drain node w2" in out.stdout, out.stdout + out.stderr
        assert not core.read_node("w2").spec.unschedulable
        wait.until(lambda: nodes() == {"w1", "w2"}, 60, "the restarted replicas on w1 and w2")
    finally:
        path.write_text(before)
        control.uncordon("w2")
        control.uncordon("w3")
        control.delete_namespace(ns)

        def gone() -> bool:   # a Deployment left terminating would be the next audit's WL-006 finding
            return ns not in {n.metadata.name for n in core.list_namespace().items}
        wait.until(gone, 180, f"namespace {ns} to be gone")
