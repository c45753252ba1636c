"""Workloads: nodes are Ready, there is room to reschedule, critical workloads run
replicas on different nodes behind a PodDisruptionBudget, and, cluster-wide, no single
node's loss or drain takes a workload down or strands its pods (WL-004..007, over every
namespace the inventory's workloads.scope allows)."""

from __future__ import annotations

import pytest

from hakit.inventory import CriticalWorkload
from hakit.kube import matches, quantity
from hakit.model import Evidence, check
from hakit.snapshot import Snapshot, is_control_plane, is_ready, is_schedulable
from hakit.workloads import ZONE, Fleet


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
    not_ready = sorted(n.metadata.name for n in nodes if not is_ready(n))
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
               if not is_control_plane(n) and is_ready(n) and is_schedulable(n)]
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
    selector = snapshot.api.sanitize_for_serialization(obj.spec.selector)   # matchExpressions too
    pods = [p for p in snapshot.pods(workload.namespace, "")
            if matches(selector, p.metadata.labels or {})
            and p.status.phase == "Running" and not p.metadata.deletion_timestamp]
    nodes = sorted({p.spec.node_name for p in pods})
    evidence.record("replicas", obj.spec.replicas, expected="≥ 2")
    evidence.record("running on nodes", nodes or "none", expected="≥ 2 distinct")
    labels = obj.spec.template.metadata.labels or {}
    pdbs = [p for p in snapshot.pdbs(workload.namespace)
            if matches(snapshot.api.sanitize_for_serialization(p.spec.selector), labels)]
    allowed = max((p.status.disruptions_allowed or 0 for p in pdbs), default=None)
    evidence.record("PDB disruptions allowed", allowed if pdbs else "no PDB", expected="≥ 1")
    name = f"{workload.kind} {workload.namespace}/{workload.name}"
    evidence.about("", "workload placement")   # only read when the check fails
    assert (obj.spec.replicas or 0) >= 2, f"{name} has {obj.spec.replicas} replica(s): one failure stops it"
    assert len(nodes) >= 2, f"{name}'s running replicas are all on {', '.join(nodes) or 'no node'}"
    assert pdbs, f"{name} has no PodDisruptionBudget: a drain may evict every replica at once"
    assert allowed and allowed >= 1, f"{name}'s PDB allows {allowed} disruptions: a drain would block"


def grouped(by_node: dict[str, list[str]], limit: int = 8) -> str:
    """'node: a, b; node2: c', the longest first, cut to `limit` nodes."""
    parts = [f"{node}: {', '.join(items[:5])}{' …' if len(items) > 5 else ''}"
             for node, items in sorted(by_node.items(), key=lambda kv: -len(kv[1]))[:limit]]
    more = len(by_node) - limit
    return "; ".join(parts) + (f"; and {more} more nodes" if more > 0 else "")


@check("WL-004", "No single node's or zone's loss takes a workload to zero, below its PDB or below quorum",
       property="workloads", severity="warning", runbook="workload-spread",
       remediation="""For each workload named: run ≥ 2 replicas spread over nodes (podAntiAffinity or a
topologySpreadConstraint on kubernetes.io/hostname, and on topology.kubernetes.io/zone where nodes have
zones), so that the loss of any one node, or any one zone, leaves enough ready replicas; `hakit runbook
run workload-spread workload=NS/NAME` does it for one.""")
def test_no_node_loss_takes_a_workload_down(fleet: Fleet, snapshot: Snapshot, evidence: Evidence) -> None:
    """What an outage of each node, and of each zone where nodes carry one, would cost right now,
    for every workload in scope."""
    nodes = [n.metadata.name for n in snapshot.nodes]
    zone_of = {n.metadata.name: z for n in snapshot.nodes if (z := (n.metadata.labels or {}).get(ZONE))}
    impact = fleet.loss_impact({n: n for n in nodes})
    zones = sorted(set(zone_of.values()))
    if len(zones) >= 2:   # one zone is the whole cluster: its loss is not a single failure to survive
        impact |= {f"zone {z}": hurt for z, hurt in fleet.loss_impact(zone_of).items()}
    evidence.record("workloads in scope", len(fleet.workloads))
    evidence.record("zones (topology.kubernetes.io/zone)", f"{len(zones)} ({len(zone_of)} of {len(nodes)} nodes)"
                    if zones else "none labelled: node loss only")
    evidence.record("nodes or zones whose loss hurts a workload", len(impact), expected="0")
    for domain, hurt in sorted(impact.items()):
        evidence.record(f"losing {domain}", ", ".join(hurt[:10]))
    if impact:
        evidence.about("", "workload placement")   # not node X broken: what losing it would cost
    assert not impact, f"losing one node or zone would hurt workloads: {grouped(impact)}"


@check("WL-005", "Every node can be drained now", property="workloads", severity="warning",
       runbook="workload-spread",
       remediation="""A drain evicts through the eviction API, which refuses while a PDB allows no disruption,
and kubectl refuses pods no controller recreates. Give each named PDB room (maxUnavailable ≥ 1, or
minAvailable below the ready replicas, with the replicas ready), and run bare pods under a controller,
before the maintenance rather than during it.""")
def test_every_node_drainable(fleet: Fleet, snapshot: Snapshot, evidence: Evidence) -> None:
    """A drain that hangs is a maintenance outage found too late: find it now, per node."""
    nodes = [n.metadata.name for n in snapshot.nodes]
    blocked = fleet.drain_blockers(nodes)
    evidence.record("nodes", len(nodes))
    evidence.record("nodes that cannot be drained now", sorted(blocked)[:20] or "none", expected="none")
    for node, why in sorted(blocked.items()):
        evidence.record(f"{node} cannot be drained", "; ".join(why[:10]))
    if blocked:
        evidence.about("", "workload placement")
    assert not blocked, "nodes that cannot be drained now: " + "; ".join(
        f"{node}: {', '.join(why[:3])}{' …' if len(why) > 3 else ''}" for node, why in sorted(blocked.items())[:8])


@check("WL-006", "Every replicated workload has a PDB that can allow a disruption", property="workloads",
       severity="warning", runbook="workload-spread",
       remediation="""Add a PodDisruptionBudget to each replicated workload named (maxUnavailable: 1 is the
usual choice); fix budgets that can never allow a disruption (maxUnavailable: 0, or minAvailable equal
to the replicas) and budgets whose selector matches no pod (a typo in a label protects nothing).""")
def test_disruption_budgets_sound(fleet: Fleet, evidence: Evidence) -> None:
    """Without a budget a drain may take every replica at once; with a budget of zero, never one."""
    problems = fleet.budget_problems()
    evidence.record("PDBs in scope", len(fleet.budgets))
    evidence.record("problems", problems[:20] or "none", expected="none")
    assert not problems, f"{len(problems)} disruption-budget problem(s): {'; '.join(problems[:8])}" + (
        " …" if len(problems) > 8 else "")


@check("WL-007", "The nodes left after any one node's loss have room for the pods it runs",
       property="workloads", severity="warning", runbook="node-drain-replace",
       remediation="""A lost node's pods are recreated only where requests fit: with too little room
left they stay Pending until it returns. Keep every node's share of requests below what the
others can absorb (N+1 capacity: add a node, or lower requests that are far above use), and spread
the largest pods so that no node carries more than the others could take.""")
def test_room_to_lose_a_node(fleet: Fleet, snapshot: Snapshot, evidence: Evidence) -> None:
    """What losing each schedulable node would strand: the pods controllers recreate, placed by
    their requests on the Ready schedulable nodes left (DaemonSet, mirror and bare pods stay)."""
    allocatable = {n.metadata.name: (round(quantity(a.get("cpu", 0)) * 1000), round(quantity(a.get("memory", 0))),
                                     int(quantity(a.get("pods", 0))))
                   for n in snapshot.nodes if is_ready(n) and is_schedulable(n)
                   for a in [n.status.allocatable or {}]}
    stranded = fleet.room_after_loss(allocatable)
    evidence.record("schedulable Ready nodes", len(allocatable))
    evidence.record("nodes whose loss strands pods", sorted(stranded)[:20] or "none", expected="none")
    for node, what in sorted(stranded.items())[:20]:
        evidence.record(f"losing {node}", what)
    if stranded:
        evidence.about("", "workload placement")
    assert not stranded, "losing one node would leave pods with no node to run on: " + "; ".join(
        f"{node}: {what}" for node, what in sorted(stranded.items())[:5]) + (" …" if len(stranded) > 5 else "")


@check("WL-008", "Every node runs its agents Ready: kube-proxy, the pod network's, each DaemonSet",
       property="workloads", runbook="node-drain-replace",
       remediation="""A node without a Ready kube-proxy routes no Service traffic, one without its pod
network agent gives new pods no network: each is an outage for that node's pods though the node is
Ready. `kubectl -n NS describe pod` on the pod named shows why (a crash loop after a rollout with a
bad flag or image, an unmet toleration); `kubectl -n NS rollout undo daemonset/NAME` returns a bad
rollout to the last revision that ran.""")
def test_node_agents_ready(fleet: Fleet, evidence: Evidence) -> None:
    """Each DaemonSet in scope Ready on every node it is meant for, as its own status counts
    them, with the nodes where it is not."""
    down = fleet.agents_down()
    evidence.record("DaemonSets in scope", len(fleet.daemonsets))
    evidence.record("DaemonSets not Ready everywhere", sorted(down)[:20] or "none", expected="none")
    for key, why in sorted(down.items())[:20]:
        evidence.record(key, why)
    if down:
        evidence.about("", "node agents")
    assert not down, "node agents not Ready on every node: " + "; ".join(f"{k}: {v}" for k, v in sorted(down.items()))
