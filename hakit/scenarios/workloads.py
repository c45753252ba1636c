"""The workloads' scenarios, on a probe workload of hakit's own (a Deployment spread across
the workers, behind a PDB, in a namespace journaled like a fault: removed on exit, or by
`hakit repair` after a crash): a worker lost with its pods (WL-D01), a worker drained
through the eviction API (WL-D02)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from kubernetes import client
from kubernetes.client.rest import ApiException

from hakit import wait
from hakit.cluster import Cluster
from hakit.faults.kinds import Drain, ProbeNamespace, StopComponent
from hakit.inventory import Inventory
from hakit.kube import deployment_of, drain_plan, evict, matches
from hakit.measure import Watch
from hakit.model import Evidence
from hakit.scenarios import Alerts, Inject
from hakit.snapshot import is_control_plane, is_ready

MAX_REPLICAS = 3
# The probe tolerates an unreachable node for 5 s, not the 300 s every pod gets by default:
# what is measured is the control plane's part (detection, eviction, scheduling), not a default.
TOLERATION_SECONDS = 5
LABELS = {"app.kubernetes.io/name": "hakit-probe"}
UPSTREAM_PAUSE = "registry.k8s.io/pause:3.10"


def probe_image(inventory: Inventory, nodes: list[client.V1Node]) -> str:
    """The probe's image: the inventory's, else a pause image every worker already holds (the
    runtime's sandbox image, so an air-gapped cluster needs no pull), else upstream's."""
    if inventory.probe_image:
        return inventory.probe_image
    held = [{name for image in n.status.images or [] for name in image.names or [] if "/pause:" in name}
            for n in nodes if not is_control_plane(n)]
    common = set.intersection(*held) if held else set()
    return min((i for i in common if "@" not in i), default=UPSTREAM_PAUSE)


@dataclass(frozen=True)
class Probe:
    namespace: str
    replicas: int   # one per schedulable worker, 2 to 3: any one worker's loss costs one, as its PDB allows


def probe_deployment(image: str, replicas: int) -> dict:
    tolerations = [{"key": f"node.kubernetes.io/{t}", "operator": "Exists", "effect": "NoExecute",
                    "tolerationSeconds": TOLERATION_SECONDS} for t in ("unreachable", "not-ready")]
    return {
        "metadata": {"name": "hakit-probe", "labels": LABELS},
        "spec": {"replicas": replicas, "selector": {"matchLabels": LABELS},
                 "template": {"metadata": {"labels": LABELS}, "spec": {
                     "tolerations": tolerations, "terminationGracePeriodSeconds": 5,
                     "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                                    "whenUnsatisfiable": "ScheduleAnyway",
                                                    "labelSelector": {"matchLabels": LABELS}}],
                     "containers": [{"name": "probe", "image": image, "imagePullPolicy": "IfNotPresent"}]}}}}


@contextmanager
def probe_workload(control: Cluster, inventory: Inventory) -> Iterator[Probe]:
    """The probe workload, ready on the workers; its namespace removed on exit."""
    namespace = f"hakit-probe-{uuid.uuid4().hex[:6]}"
    nodes = client.CoreV1Api(control.api).list_node(_request_timeout=10).items
    workers = [n for n in nodes if not is_control_plane(n) and not n.spec.unschedulable]
    p = Probe(namespace, min(MAX_REPLICAS, max(2, len(workers))))
    with ProbeNamespace(control, namespace):
        client.AppsV1Api(control.api).create_namespaced_deployment(
            namespace, probe_deployment(probe_image(inventory, nodes), p.replicas))
        client.PolicyV1Api(control.api).create_namespaced_pod_disruption_budget(namespace, {
            "metadata": {"name": "hakit-probe"}, "spec": {"maxUnavailable": 1, "selector": {"matchLabels": LABELS}}})
        wait.until(lambda: len(running(control, namespace)) == p.replicas, 120,
                   f"{p.replicas} probe pods Running in {namespace}")
        yield p


def pods(control: Cluster, namespace: str) -> list[client.V1Pod]:
    return client.CoreV1Api(control.api).list_namespaced_pod(namespace, _request_timeout=3).items


def running(control: Cluster, namespace: str, avoid: str = "") -> list[client.V1Pod]:
    """Probe pods Running and Ready, not terminating, and not on node `avoid`."""
    return [p for p in pods(control, namespace)
            if p.metadata.deletion_timestamp is None and p.status.phase == "Running" and p.spec.node_name != avoid
            and is_ready(p)]


def victim_worker(control: Cluster, namespace: str, inv: Inventory) -> str:
    """The worker to lose: one running a critical workload's pod if any (does that workload
    survive losing its node?), else the one running the most probe replicas."""
    core = client.CoreV1Api(control.api)
    nodes = {n.metadata.name: n for n in core.list_node().items}
    workers = {name for name, n in nodes.items() if not is_control_plane(n)}
    placed = [p.spec.node_name for p in running(control, namespace) if p.spec.node_name in workers]
    if not placed:
        raise AssertionError("no probe pod landed on a worker node: the cluster has no schedulable worker")
    critical = set()
    for w in inv.critical_workloads:
        obj = (client.AppsV1Api(control.api).read_namespaced_deployment if w.kind == "Deployment"
               else client.AppsV1Api(control.api).read_namespaced_stateful_set)(w.name, w.namespace)
        selector = ",".join(f"{k}={v}" for k, v in (obj.spec.selector.match_labels or {}).items())
        critical |= {p.spec.node_name for p in core.list_namespaced_pod(w.namespace, label_selector=selector).items}
    return max(sorted(set(placed)), key=lambda n: (n in critical, placed.count(n)))


@dataclass
class WorkerLoss:
    """A worker lost with its pods: when it went NotReady, its pods were evicted and the
    probe was whole again elsewhere, and the pods left Terminating on it."""
    victim: str
    t0: float
    lost: float
    evicted: float
    replaced: float
    stuck: list[str]


def lose_worker(inv: Inventory, control: Cluster, probe: Probe, inject: Inject, evidence: Evidence,
                alerts: Alerts, within: float) -> WorkerLoss:
    """Stop the kubelet of the worker `victim_worker` picks (a node gone silent) and watch
    until every probe replica runs elsewhere (each stage waited `within` seconds at most);
    follows KubeNodeNotReady, so the fault is held for the alert after the measurement."""
    victim = victim_worker(control, probe.namespace, inv)
    core = client.CoreV1Api(control.api)
    with Watch(f"node {victim} Ready", lambda: is_ready(core.read_node(victim, _request_timeout=3))) as ready, \
            Watch("probe pods", lambda: pods(control, probe.namespace)) as seen, \
            alerts.following("KubeNodeNotReady", victim) as follow:
        with inject(StopComponent(control, victim, "kubelet")) as fault:
            t0 = fault.injected_at
            lost = ready.wait(lambda v: v is False, t0, within, f"node {victim} to be NotReady")
            evidence.event(f"node {victim} NotReady", lost, True)
            evicted = seen.wait(lambda ps: any(p.metadata.deletion_timestamp and p.spec.node_name == victim
                                               for p in ps), t0, within, f"the pods on {victim} to be evicted")
            evidence.event(f"pods on {victim} evicted", evicted, True)
            replaced = wait.until(lambda: len(running(control, probe.namespace, avoid=victim)) == probe.replicas
                                  and time.monotonic(), within,
                                  f"{probe.replicas} probe pods Running away from {victim}", interval=0.1)
            evidence.event(f"{probe.replicas} replicas Running on other nodes", replaced, True)
            stuck = [p.metadata.name for p in pods(control, probe.namespace)
                     if p.metadata.deletion_timestamp and p.spec.node_name == victim]
            alerts.hold(follow, fault, t0)   # the node Ready again is part of the steady state after it
        alerts.done(follow, fault, evidence)
    return WorkerLoss(victim, t0, lost, evicted, replaced, stuck)


class DrainRefused(AssertionError):
    """The drain could not be done: pods `kubectl drain` refuses, or a PDB that never allowed."""


def blocking(control: Cluster, pods: list[client.V1Pod]) -> str:
    """The PDBs covering pods whose eviction was refused: 'PDB ns/name allows 0, ...'."""
    pdbs = client.PolicyV1Api(control.api).list_pod_disruption_budget_for_all_namespaces(_request_timeout=10).items
    return ", ".join(sorted({
        f"PDB {b.metadata.namespace}/{b.metadata.name} allows {(b.status.disruptions_allowed or 0) if b.status else 0}"
        for p in pods for b in pdbs if b.metadata.namespace == p.metadata.namespace
        and matches(control.api.sanitize_for_serialization(b.spec.selector), p.metadata.labels or {})})) or "a PDB"


@dataclass
class DrainRun:
    """A worker drained: how many pods it evicted, how many evictions a PDB refused first,
    when it was done, and the fewest probe replicas that ran meanwhile."""
    node: str
    evicted: int
    refused: int
    seconds: float
    fewest: int


def drain_worker(inv: Inventory, control: Cluster, probe: Probe, inject: Inject, evidence: Evidence,
                 within: float) -> DrainRun:
    """Drain a worker as `kubectl drain --ignore-daemonsets` does: every pod it would evict,
    through the eviction API, retried while a PDB says 429 for `within` seconds; done when
    every evicted pod is gone from the node and the probe is whole elsewhere. The drain's
    undo uncordons the node and spreads again what it left on one node, whatever happens
    (or `hakit repair` after a crash). Raises DrainRefused, naming what refused."""
    node = victim_worker(control, probe.namespace, inv)
    core = client.CoreV1Api(control.api)

    def on_node() -> list[client.V1Pod]:
        return core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}", _request_timeout=10).items
    evictable, refusals = drain_plan(on_node())
    evidence.record("pods the drain evicts", len(evictable))
    if refusals:
        raise DrainRefused(f"kubectl drain would refuse {node}: {'; '.join(refusals[:5])}")
    apps = client.AppsV1Api(control.api)
    moved = {d for p in evictable if p.metadata.namespace != probe.namespace and (d := deployment_of(apps, p))}
    drain = Drain(control, node, moved)
    with Watch("probe pods Running", lambda: len(running(control, probe.namespace))) as available:
        try:
            with inject(drain):
                deadline, refused, blocked = drain.injected_at + within, 0, []
                for pod in evictable:
                    try:
                        refused += evict(core, pod, deadline)
                    except ApiException as e:
                        if e.status != 429:
                            raise
                        blocked.append(pod)
                if blocked:
                    raise DrainRefused(
                        f"the drain of {node} is blocked after {within:g} s: {blocking(control, blocked)} "
                        f"({len(blocked)} pod(s) not evicted: "
                        f"{', '.join(f'{p.metadata.namespace}/{p.metadata.name}' for p in blocked[:5])})")
                evicted = {p.metadata.uid for p in evictable}
                drained = wait.until(lambda: not any(p.metadata.uid in evicted for p in on_node())
                                     and len(running(control, probe.namespace, avoid=node)) == probe.replicas
                                     and time.monotonic(),
                                     max(within - (time.monotonic() - drain.injected_at), 1), f"{node} to be drained",
                                     interval=0.2)
                evidence.event(f"drained: every evicted pod gone from {node}, the probe whole elsewhere", drained, True)
        finally:   # the drain's undo: uncordoned, and what it left on one node spread again
            evidence.record("restarted to spread again after the drain", ", ".join(drain.undone or []) or "none needed")
        fewest = min(v for _, v in available.samples if isinstance(v, int))
    return DrainRun(node, len(evictable), refused, drained - drain.injected_at, fewest)
