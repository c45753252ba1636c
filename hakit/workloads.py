"""Every workload, every node: what losing or draining any one node would do, read once.

A `Fleet` is built from one paginated LIST each of pods, Deployments, StatefulSets,
ReplicaSets and PodDisruptionBudgets in every namespace, read as raw JSON and kept as
small records (30,000 pods as client objects would cost minutes and gigabytes). It
answers three questions, each a check in checks/test_workloads.py:

- node or zone loss: which workloads drop to zero ready replicas, below their PDB, or below
  a StatefulSet's quorum, if this node (or every node of this zone) were lost right now;
- drainability: which nodes `kubectl drain` could not empty right now, and which PDB or
  pod stops it (kubectl's rules: DaemonSet and mirror pods stay, a pod no controller
  recreates needs --force, a PDB allowing 0 disruptions refuses every eviction);
- disruption budgets: replicated workloads without one, budgets that allow none, and
  budgets whose selector matches no pod;
- room: whether the nodes left after any one node's loss can take the pods it ran that
  their controllers will recreate (their requests of CPU, memory and pod slots);
- node agents: each DaemonSet (kube-proxy, the pod network's agent, ...) Ready on every
  node it should run on, and on which nodes it is not.

Selectors are matched in full (matchLabels and matchExpressions), as the API server does.
One module for the four questions: they share the one index of the fleet built here.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kubernetes import client

from hakit import listing
from hakit.inventory import Scope
from hakit.kube import matches, pod_requests

ZONE = "topology.kubernetes.io/zone"
T = TypeVar("T")


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    node: str
    labels: dict[str, str]
    ready: bool
    owner: tuple[str, str]      # (kind, name) of the controlling owner, ("", "") for a bare pod
    mirror: bool                # a static pod's mirror: drain leaves it
    empty_dir: bool             # drain needs --delete-emptydir-data
    requests: tuple[int, int] = (0, 0)   # (CPU millicores, memory bytes) the scheduler reserves for it
    done: bool = False          # Succeeded or Failed: holds nothing on its node

    @property
    def recreated_elsewhere(self) -> bool:
        """Its controller makes a replacement on another node when its node is lost (a
        DaemonSet's pod belongs to its node, a mirror pod to its host, a bare pod to nobody)."""
        return bool(self.owner[0]) and self.owner[0] != "DaemonSet" and not self.mirror and not self.done

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Budget:
    namespace: str
    name: str
    selector: dict[str, Any] | None
    allowed: int                 # status.disruptionsAllowed: what the eviction API itself checks
    desired_healthy: int
    expected: int                # status.expectedPods: pods the budget covers

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class Workload:
    kind: str
    namespace: str
    name: str
    replicas: int
    selector: dict[str, Any] | None
    template_labels: dict[str, str]
    pods: list[Pod] = field(default_factory=list)
    budgets: list[Budget] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    @property
    def ready_nodes(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for p in self.pods:
            if p.ready:
                out[p.node] += 1
        return out


@dataclass(frozen=True)
class DaemonSet:
    namespace: str
    name: str
    desired: int      # status.desiredNumberScheduled: the nodes it should run on
    scheduled: int    # status.currentNumberScheduled
    ready: int        # status.numberReady

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def _daemonset(scope: Scope) -> Callable[[dict[str, Any]], DaemonSet | None]:
    def keep(d: dict[str, Any]) -> DaemonSet | None:
        meta, status = d["metadata"], d.get("status") or {}
        if not scope.wants(meta["namespace"], meta.get("labels") or {}):
            return None
        return DaemonSet(meta["namespace"], meta["name"], int(status.get("desiredNumberScheduled", 0)),
                         int(status.get("currentNumberScheduled", 0)), int(status.get("numberReady", 0)))
    return keep


def _pod(d: dict[str, Any]) -> Pod:
    meta, spec, status = d["metadata"], d.get("spec") or {}, d.get("status") or {}
    owner = next(((o.get("kind", ""), o.get("name", "")) for o in meta.get("ownerReferences") or []
                  if o.get("controller")), ("", ""))
    ready = status.get("phase") == "Running" and not meta.get("deletionTimestamp") and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    return Pod(meta["namespace"], meta["name"], spec.get("nodeName") or "", meta.get("labels") or {}, ready, owner,
               "kubernetes.io/config.mirror" in (meta.get("annotations") or {}),
               any("emptyDir" in v for v in spec.get("volumes") or []), pod_requests(spec),
               status.get("phase") in ("Succeeded", "Failed"))


def _budget(d: dict[str, Any], scope: Scope) -> Budget | None:
    meta, status = d["metadata"], d.get("status") or {}
    if not scope.wants(meta["namespace"], meta.get("labels") or {}):
        return None
    return Budget(meta["namespace"], meta["name"], (d.get("spec") or {}).get("selector"),
                  int(status.get("disruptionsAllowed", 0)), int(status.get("desiredHealthy", 0)),
                  int(status.get("expectedPods", 0)))


def _workload(kind: str, scope: Scope) -> Callable[[dict[str, Any]], Workload | None]:
    def keep(d: dict[str, Any]) -> Workload | None:
        meta, spec = d["metadata"], d.get("spec") or {}
        if any(o.get("controller") for o in meta.get("ownerReferences") or []):
            return None   # a Deployment's ReplicaSet, or anything another controller runs
        if not scope.wants(meta["namespace"], meta.get("labels") or {}):
            return None
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        return Workload(kind, meta["namespace"], meta["name"], int(spec.get("replicas", 1)), spec.get("selector"),
                        labels)
    return keep


class Fleet:
    """Every workload and budget of the cluster, and the nodes it runs on. Pods and budgets
    are indexed by namespace and node once, so each question is one pass over the fleet
    (1,000 nodes × 30,000 pods must not be a product)."""

    def __init__(self, pods: list[Pod], budgets: list[Budget], workloads: list[Workload],
                 scope: Scope = Scope(), daemonsets: list[DaemonSet] | None = None) -> None:
        self.pods, self.budgets, self.workloads, self.scope = pods, budgets, workloads, scope
        self.daemonsets = daemonsets or []
        self.pods_in: dict[str, list[Pod]] = defaultdict(list)
        self.pods_on: dict[str, list[Pod]] = defaultdict(list)
        self.budgets_in: dict[str, list[Budget]] = defaultdict(list)
        self._labelled: dict[tuple[str, str, str], list[Pod]] = defaultdict(list)   # (ns, key, value)
        for p in pods:
            self.pods_in[p.namespace].append(p)
            self.pods_on[p.node].append(p)
            for label in p.labels.items():
                self._labelled[(p.namespace, *label)].append(p)
        for b in budgets:
            self.budgets_in[b.namespace].append(b)
        for w in workloads:
            w.pods = [p for p in self.selected(w.namespace, w.selector) if p.owner[0] != "DaemonSet"]
            w.budgets = [b for b in self.budgets_in[w.namespace] if matches(b.selector, w.template_labels)]

    def selected(self, namespace: str, selector: dict[str, Any] | None) -> list[Pod]:
        """The pods of namespace a selector matches. Only the pods carrying one of its required
        labels (a matchLabels pair, or an `In` expression's values) are tried: a namespace of
        thousands of pods is not scanned once per workload and budget."""
        pods = self.pods_in.get(namespace, [])
        terms = [[v] for v in ((selector or {}).get("matchLabels") or {}).items()] + [
            [(e.get("key"), v) for v in dict.fromkeys(e.get("values") or [])]
            for e in (selector or {}).get("matchExpressions") or [] if e.get("operator") == "In"]
        if terms:
            pods = [p for label in terms[0] for p in self._labelled.get((namespace, *label), ())]
        return [p for p in pods if matches(selector, p.labels)]

    @classmethod
    def read(cls, api: client.ApiClient, scope: Scope = Scope()) -> Fleet:
        """One paginated LIST per kind, every namespace; ReplicaSets a Deployment owns are
        judged as that Deployment."""
        core, apps, policy = client.CoreV1Api(api), client.AppsV1Api(api), client.PolicyV1Api(api)
        with ThreadPoolExecutor(max_workers=6) as pool:   # the server's time for one overlaps the others'
            pods = pool.submit(listing.listed, core.list_pod_for_all_namespaces, "pods", _pod)
            daemonsets = pool.submit(listing.listed, apps.list_daemon_set_for_all_namespaces, "daemonsets",
                                     _daemonset(scope))
            budgets = pool.submit(listing.listed, policy.list_pod_disruption_budget_for_all_namespaces,
                                  "poddisruptionbudgets", lambda d: _budget(d, scope))
            kinds = [pool.submit(listing.listed, fn, kind, _workload(kind, scope)) for kind, fn in (
                ("Deployment", apps.list_deployment_for_all_namespaces),
                ("StatefulSet", apps.list_stateful_set_for_all_namespaces),
                ("ReplicaSet", apps.list_replica_set_for_all_namespaces))]
            workloads = [w for k in kinds for w in k.result()]
            return cls(pods.result(), budgets.result(), workloads, scope, daemonsets.result())

    # --- losing a node, or a zone -------------------------------------------------------------

    def loss_impact(self, domain_of: dict[str, str]) -> dict[str, list[str]]:
        """Failure domain -> what losing it now does to each workload it would hurt, in words.
        `domain_of` maps each node to its domain: itself for node loss, its zone for zone loss."""
        out: dict[str, list[str]] = defaultdict(list)
        for w in self.workloads:
            ready = w.ready_nodes
            total = sum(ready.values())
            lost: dict[str, int] = defaultdict(int)
            for node, n in ready.items():
                if node in domain_of:
                    lost[domain_of[node]] += n
            for domain, n in lost.items():
                if hurt := self._hurt(w, total - n):
                    out[domain].append(hurt)
        return dict(out)

    @staticmethod
    def _hurt(w: Workload, after: int) -> str:
        if after == 0:
            return f"{w.key} to 0 ready"
        need = max((b.desired_healthy for b in w.budgets), default=0)
        if after < need:
            return f"{w.key} below its PDB ({after} < {need})"
        if w.kind == "StatefulSet" and w.replicas >= 3 and after < w.replicas // 2 + 1:
            return f"{w.key} below quorum ({after} of {w.replicas})"
        return ""

    # --- drainability -------------------------------------------------------------------------

    def drain_blockers(self, nodes: list[str]) -> dict[str, list[str]]:
        """node -> why `kubectl drain` would not empty it now (kubectl's rules, PDB status)."""
        out: dict[str, list[str]] = {}
        refusing: dict[str, list[str]] = defaultdict(list)   # pod key -> budgets that refuse its eviction
        for b in self.budgets:
            if b.allowed < 1:
                for p in self.selected(b.namespace, b.selector):
                    refusing[p.key].append(b.key)
        for node in nodes:
            why: set[str] = set()
            for p in self.pods_on.get(node, ()):
                if p.mirror or p.owner[0] == "DaemonSet" or not self.scope.wants(p.namespace, p.labels):
                    continue
                if not p.owner[0]:
                    why.add(f"pod {p.key} has no controller (drain needs --force, and it is lost)")
                    continue
                why.update(f"PDB {b} allows 0 disruptions (pod {p.key})" for b in refusing.get(p.key, ()))
            if why:
                out[node] = sorted(why)
        return out

    # --- room to lose a node ----------------------------------------------------------------

    def room_after_loss(self, allocatable: dict[str, tuple[int, int, int]]) -> dict[str, str]:
        """Lost node -> what of its recreated pods the other nodes could not take, in words.
        `allocatable`: each schedulable Ready node's (CPU millicores, memory bytes, pods). Each
        pod, largest first, goes to the node with the most CPU left that has room for it
        (requests only: the scheduler's filters beyond them, affinities and selectors, can only
        make it worse, so what fails here fails there too, but for packing luck)."""
        free: dict[str, list[int]] = {}
        for node, (cpu, mem, slots) in allocatable.items():
            here = [p for p in self.pods_on.get(node, ()) if not p.done]
            free[node] = [cpu - sum(p.requests[0] for p in here), mem - sum(p.requests[1] for p in here),
                          slots - len(here)]
        order = [(-f[0], n) for n, f in free.items()]
        heapq.heapify(order)
        out = {}
        for lost in allocatable:
            moving = sorted((p for p in self.pods_on.get(lost, ()) if p.recreated_elsewhere),
                            key=lambda p: p.requests, reverse=True)
            if moving and (left := self._place(moving, lost, free, list(order))):
                out[lost] = left
        return out

    @staticmethod
    def _place(moving: list[Pod], lost: str, free: dict[str, list[int]], heap: list[tuple[int, str]]) -> str:
        """Place `moving` on the nodes of `heap` but `lost` (worst fit by CPU); what did not fit."""
        room = {n: list(f) for n, f in free.items() if n != lost}
        stranded: list[Pod] = []
        for p in moving:
            tried = []
            while heap:
                _, node = heapq.heappop(heap)
                if node == lost:
                    continue
                tried.append(node)
                f = room[node]
                if f[0] >= p.requests[0] and f[1] >= p.requests[1] and f[2] >= 1:
                    f[0], f[1], f[2] = f[0] - p.requests[0], f[1] - p.requests[1], f[2] - 1
                    break
                if f[0] < p.requests[0] or len(tried) >= 32:   # the most CPU left is not enough: nowhere is
                    stranded.append(p)
                    break
            else:
                stranded.append(p)
            for node in tried:
                heapq.heappush(heap, (-room[node][0], node))
        if not stranded:
            return ""
        cpu, mem = sum(p.requests[0] for p in stranded), sum(p.requests[1] for p in stranded)
        names = ", ".join(p.key for p in stranded[:3]) + (f" and {len(stranded) - 3} more" if len(stranded) > 3 else "")
        return (f"{len(stranded)} of its {len(moving)} recreated pods find no node with room ({names}; "
                f"{cpu / 1000:g} CPU, {mem / 2 ** 30:.1f} GiB requested)")

    # --- node agents ------------------------------------------------------------------------

    def agents_down(self) -> dict[str, str]:
        """DaemonSet -> how it falls short of running Ready on every node it should: the nodes
        whose pod of it is not Ready, and how many nodes have none at all."""
        out = {}
        for ds in self.daemonsets:
            if ds.ready >= ds.desired and ds.scheduled >= ds.desired:
                continue
            mine = [p for p in self.pods_in.get(ds.namespace, ()) if p.owner == ("DaemonSet", ds.name) and not p.done]
            unready = sorted({p.node or "unscheduled" for p in mine if not p.ready})
            why = [f"{ds.ready} of {ds.desired} Ready"]
            if unready:
                why.append(f"not Ready on {', '.join(unready[:8])}" + (" …" if len(unready) > 8 else ""))
            if ds.scheduled < ds.desired:
                why.append(f"{ds.desired - ds.scheduled} node(s) without a pod of it")
            out[ds.key] = "; ".join(why)
        return out

    # --- disruption budgets ---------------------------------------------------------------------

    def budget_problems(self) -> list[str]:
        out = [f"{w.key} ({w.replicas} replicas) has no PodDisruptionBudget"
               for w in self.workloads if w.replicas >= 2 and not w.budgets]
        for b in self.budgets:
            if not self.selected(b.namespace, b.selector):
                out.append(f"PDB {b.key} matches no pod")
            elif b.allowed < 1 and b.desired_healthy >= b.expected:
                out.append(f"PDB {b.key} can never allow a disruption (needs {b.desired_healthy} healthy of "
                           f"{b.expected})")
        return out
