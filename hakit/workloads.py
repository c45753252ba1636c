"""Every workload, every node: what losing or draining any one node would do, read once.

A `Fleet` is built from one paginated LIST each of pods, Deployments, StatefulSets,
ReplicaSets and PodDisruptionBudgets in every namespace, read as raw JSON and kept as
small records (30,000 pods as client objects would cost minutes and gigabytes). It
answers three questions, each a check in checks/test_workloads.py:

- node loss: which workloads drop to zero ready replicas, below their PDB, or below a
  StatefulSet's quorum, if this node were lost right now;
- drainability: which nodes `kubectl drain` could not empty right now, and which PDB or
  pod stops it (kubectl's rules: DaemonSet and mirror pods stay, a pod no controller
  recreates needs --force, a PDB allowing 0 disruptions refuses every eviction);
- disruption budgets: replicated workloads without one, budgets that allow none, and
  budgets whose selector matches no pod.

Selectors are matched in full (matchLabels and matchExpressions), as the API server does.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from hakit.errors import UnreachableError
from hakit.inventory import Scope

PAGE = 500
ZONE = "topology.kubernetes.io/zone"


def matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A metav1.LabelSelector against labels: None matches nothing, {} everything."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False   # unknown operator: the API server would have refused it; match nothing
    return True


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


def _raw_pages(fn: Any, what: str) -> Iterator[dict[str, Any]]:
    """Items of a paginated LIST as plain dicts (no client-object deserialisation)."""
    token = None
    while True:
        try:
            resp = fn(limit=PAGE, _continue=token, _preload_content=False, _request_timeout=60)
        except ApiException as e:
            raise UnreachableError(f"API list {what}: HTTP {e.status} {e.reason}", ("", "api")) from None
        except HTTPError as e:
            raise UnreachableError(f"API list {what}: {type(e).__name__}", ("", "api")) from None
        page = json.loads(resp.data)
        yield from page.get("items") or []
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return


def _pod(d: dict[str, Any]) -> Pod:
    meta, spec, status = d["metadata"], d.get("spec") or {}, d.get("status") or {}
    owner = next(((o.get("kind", ""), o.get("name", "")) for o in meta.get("ownerReferences") or []
                  if o.get("controller")), ("", ""))
    ready = status.get("phase") == "Running" and not meta.get("deletionTimestamp") and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    return Pod(meta["namespace"], meta["name"], spec.get("nodeName") or "", meta.get("labels") or {}, ready, owner,
               "kubernetes.io/config.mirror" in (meta.get("annotations") or {}),
               any("emptyDir" in v for v in spec.get("volumes") or []))


class Fleet:
    """Every workload and budget of the cluster, and the nodes it runs on."""

    def __init__(self, pods: list[Pod], budgets: list[Budget], workloads: list[Workload],
                 scope: Scope = Scope()) -> None:
        self.pods, self.budgets, self.workloads, self.scope = pods, budgets, workloads, scope
        by_ns: dict[str, list[Pod]] = defaultdict(list)
        for p in pods:
            by_ns[p.namespace].append(p)
        for w in workloads:
            w.pods = [p for p in by_ns[w.namespace] if matches(w.selector, p.labels) and p.owner[0] != "DaemonSet"]
            w.budgets = [b for b in budgets if b.namespace == w.namespace and matches(b.selector, w.template_labels)]

    @classmethod
    def read(cls, api: client.ApiClient, scope: Scope = Scope()) -> Fleet:
        """One paginated LIST per kind, every namespace; ReplicaSets a Deployment owns are
        judged as that Deployment."""
        core, apps, policy = client.CoreV1Api(api), client.AppsV1Api(api), client.PolicyV1Api(api)
        pods = [_pod(d) for d in _raw_pages(core.list_pod_for_all_namespaces, "pods")]
        budgets = []
        for d in _raw_pages(policy.list_pod_disruption_budget_for_all_namespaces, "poddisruptionbudgets"):
            meta, status = d["metadata"], d.get("status") or {}
            if scope.wants(meta["namespace"], meta.get("labels") or {}):
                budgets.append(Budget(meta["namespace"], meta["name"], (d.get("spec") or {}).get("selector"),
                                      int(status.get("disruptionsAllowed", 0)), int(status.get("desiredHealthy", 0)),
                                      int(status.get("expectedPods", 0))))
        workloads = []
        for kind, fn in (("Deployment", apps.list_deployment_for_all_namespaces),
                         ("StatefulSet", apps.list_stateful_set_for_all_namespaces),
                         ("ReplicaSet", apps.list_replica_set_for_all_namespaces)):
            for d in _raw_pages(fn, kind):
                meta, spec = d["metadata"], d.get("spec") or {}
                if any(o.get("controller") for o in meta.get("ownerReferences") or []):
                    continue   # a Deployment's ReplicaSet, or anything another controller runs
                if scope.wants(meta["namespace"], meta.get("labels") or {}):
                    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
                    workloads.append(Workload(kind, meta["namespace"], meta["name"], int(spec.get("replicas", 1)),
                                              spec.get("selector"), labels))
        return cls(pods, budgets, workloads, scope)

    # --- node loss ----------------------------------------------------------------------------

    def node_loss(self, nodes: list[str]) -> dict[str, list[str]]:
        """node -> what losing it now does to each workload it would hurt, in words."""
        out: dict[str, list[str]] = {}
        for node in nodes:
            hurt = []
            for w in self.workloads:
                if w.replicas == 0:
                    continue
                ready = w.ready_nodes
                after = sum(ready.values()) - ready.get(node, 0)
                if not ready.get(node):
                    continue
                if after == 0:
                    hurt.append(f"{w.key} to 0 ready")
                elif w.budgets and after < max(b.desired_healthy for b in w.budgets):
                    hurt.append(f"{w.key} below its PDB ({after} < {max(b.desired_healthy for b in w.budgets)})")
                elif w.kind == "StatefulSet" and w.replicas >= 3 and after < w.replicas // 2 + 1:
                    hurt.append(f"{w.key} below quorum ({after} of {w.replicas})")
            if hurt:
                out[node] = hurt
        return out

    # --- drainability -------------------------------------------------------------------------

    def drain_blockers(self, nodes: list[str]) -> dict[str, list[str]]:
        """node -> why `kubectl drain` would not empty it now (kubectl's rules, PDB status)."""
        out: dict[str, list[str]] = {}
        for node in nodes:
            why: list[str] = []
            for p in self.pods:
                if p.node != node or p.mirror or p.owner[0] == "DaemonSet":
                    continue
                if not self.scope.wants(p.namespace, p.labels):
                    continue
                if not p.owner[0]:
                    why.append(f"pod {p.key} has no controller (drain needs --force, and it is lost)")
                    continue
                for b in self.budgets:
                    if b.namespace == p.namespace and matches(b.selector, p.labels) and b.allowed < 1:
                        why.append(f"PDB {b.key} allows 0 disruptions (pod {p.key})")
            if why:
                out[node] = sorted(set(why))
        return out

    # --- disruption budgets ---------------------------------------------------------------------

    def budget_problems(self) -> list[str]:
        out = []
        for w in self.workloads:
            if w.replicas >= 2 and not w.budgets:
                out.append(f"{w.key} ({w.replicas} replicas) has no PodDisruptionBudget")
        for b in self.budgets:
            covered = [p for p in self.pods if p.namespace == b.namespace and matches(b.selector, p.labels)]
            if not covered:
                out.append(f"PDB {b.key} matches no pod")
            elif b.allowed < 1 and b.desired_healthy >= b.expected:
                out.append(f"PDB {b.key} can never allow a disruption (needs {b.desired_healthy} healthy of "
                           f"{b.expected})")
        return out

    def single_replicas(self) -> list[str]:
        return [w.key for w in self.workloads if w.replicas == 1]
