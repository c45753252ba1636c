"""Workloads: nodes are Ready, there is room to reschedule, and critical
workloads run replicas on different nodes behind a PodDisruptionBudget."""

from __future__ import annotations

import pytest

from hakit.inventory import CriticalWorkload
from hakit.model import Evidence, check
from hakit.snapshot import Snapshot, is_control_plane, is_schedulable, node_is_ready


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One check per critical workload named in the inventory."""
    if "workload" in metafunc.fixturenames:
        from hakit.fixtures.plugin import inventory_of
        try:
            workloads = inventory_of(metafunc.config).critical_workloads
        except Exception:  # noqa: BLE001 - a bad inventory is reported by the inventory fixture
            workloads = []
        metafunc.parametrize("workload", workloads, ids=[f"{w.namespace}/{w.name}" for w in workloads])


@check("WL-001", "Every node is Ready", property="workloads", severity="warning", runbook="node-drain-replace",
       remediation="""`kubectl describe node NAME` shows the failing condition; a NotReady node's pods are
evicted after their tolerations. Fix the kubelet or drain and replace the node.""")
def test_nodes_ready(snapshot: Snapshot, evidence: Evidence) -> None:
    """A NotReady node is capacity lost and pods about to be evicted."""
    nodes = snapshot.nodes
    not_ready = sorted(n.metadata.name for n in nodes if not node_is_ready(n))
    evidence.record("nodes", len(nodes))
    evidence.record("not Ready", not_ready[:20] or "none", expected="none")
    for name in not_ready:
        evidence.about(name, "node")
    assert not not_ready, f"{len(not_ready)} node(s) not Ready: {', '.join(not_ready[:10])}"


@check("WL-002", "At least two schedulable worker nodes are Ready", property="workloads",
       runbook="node-drain-replace",
       remediation="""Add worker nodes or uncordon drained ones (`kubectl uncordon NAME`); with one worker,
its loss leaves nowhere to reschedule.""")
def test_two_schedulable_workers(snapshot: Snapshot, evidence: Evidence) -> None:
    """Pods of a lost node need another node to land on."""
    workers = [n.metadata.name for n in snapshot.nodes
               if not is_control_plane(n) and node_is_ready(n) and is_schedulable(n)]
    evidence.record("schedulable Ready workers", len(workers), expected="≥ 2")
    assert len(workers) >= 2, f"only {len(workers)} schedulable Ready worker(s): {', '.join(workers) or 'none'}"


@check("WL-003", "Critical workloads run ≥ 2 replicas on different nodes behind a PDB", property="workloads",
       runbook="workload-spread",
       remediation="""Set replicas ≥ 2, spread them (podAntiAffinity or topologySpreadConstraints on
kubernetes.io/hostname), and add a PodDisruptionBudget (minAvailable: 1 or maxUnavailable: 1).""")
def test_critical_workload_spread(workload: CriticalWorkload, snapshot: Snapshot, evidence: Evidence) -> None:
    """Replicas on one node die together; without a PDB a drain can take them all."""
    obj = snapshot.workload(workload.namespace, workload.kind, workload.name)
    assert obj is not None, f"{workload.kind} {workload.namespace}/{workload.name} does not exist"
    selector = ",".join(f"{k}={v}" for k, v in (obj.spec.selector.match_labels or {}).items())
    pods = [p for p in snapshot.pods(workload.namespace, selector)
            if p.status.phase == "Running" and not p.metadata.deletion_timestamp]
    nodes = sorted({p.spec.node_name for p in pods})
    evidence.record("replicas", obj.spec.replicas, expected="≥ 2")
    evidence.record("running on nodes", nodes or "none", expected="≥ 2 distinct")
    labels = obj.spec.template.metadata.labels or {}
    pdbs = [p for p in snapshot.pdbs(workload.namespace)
            if p.spec.selector and p.spec.selector.match_labels
            and all(labels.get(k) == v for k, v in p.spec.selector.match_labels.items())]
    allowed = max((p.status.disruptions_allowed or 0 for p in pdbs), default=None)
    evidence.record("PDB disruptions allowed", allowed if pdbs else "no PDB", expected="≥ 1")
    name = f"{workload.kind} {workload.namespace}/{workload.name}"
    assert (obj.spec.replicas or 0) >= 2, f"{name} has {obj.spec.replicas} replica(s): one failure stops it"
    assert len(nodes) >= 2, f"{name}'s running replicas are all on {', '.join(nodes) or 'no node'}"
    assert pdbs, f"{name} has no PodDisruptionBudget: a drain may evict every replica at once"
    assert allowed and allowed >= 1, f"{name}'s PDB allows {allowed} disruptions: a drain would block"
