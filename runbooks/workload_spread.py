"""workload-spread: make a critical workload survive the loss or drain of one node.

What WL-003 asks of it, in the order an operator would fix it: at least two replicas;
a PodDisruptionBudget that lets a drain evict one at a time (maxUnavailable: 1, added
only when no PDB covers the pods); replicas on different nodes (a spread constraint on
kubernetes.io/hostname added only when the pod template has neither anti-affinity nor
spread, then a rollout restart so the scheduler places them again). Found on every
fresh kubeadm cluster: CoreDNS's two replicas start on the first control plane, before
any other node is Ready, and kubeadm ships no PDB for them.
"""

from __future__ import annotations

import time

from kubernetes import client

from hakit import wait
from hakit.errors import ConfigError, HakitError
from hakit.runbook import Context, Param, Runbook, Step
from hakit.validate import NAME

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"   # what `kubectl rollout restart` sets


def target(ctx: Context) -> tuple[str, str]:
    namespace, _, name = ctx.params["workload"].partition("/")
    if not (NAME.match(namespace) and NAME.match(name)):
        raise ConfigError(f"workload={ctx.params['workload'][:60]!r}: expected NAMESPACE/NAME")
    return namespace, name


def apps(ctx: Context) -> client.AppsV1Api:
    return client.AppsV1Api(ctx.control.api)


def read(ctx: Context):  # type: ignore[no-untyped-def]
    namespace, name = target(ctx)
    if ctx.params["kind"] == "StatefulSet":
        return apps(ctx).read_namespaced_stateful_set(name, namespace, _request_timeout=10)
    return apps(ctx).read_namespaced_deployment(name, namespace, _request_timeout=10)


def patch(ctx: Context, body: dict) -> None:
    namespace, name = target(ctx)
    if ctx.params["kind"] == "StatefulSet":
        apps(ctx).patch_namespaced_stateful_set(name, namespace, body, _request_timeout=10)
    else:
        apps(ctx).patch_namespaced_deployment(name, namespace, body, _request_timeout=10)


def covering_pdbs(ctx: Context, labels: dict[str, str]) -> list[client.V1PodDisruptionBudget]:
    namespace, _ = target(ctx)
    pdbs = client.PolicyV1Api(ctx.control.api).list_namespaced_pod_disruption_budget(namespace, _request_timeout=10)
    return [p for p in pdbs.items
            if p.spec.selector and p.spec.selector.match_labels
            and all(labels.get(k) == v for k, v in p.spec.selector.match_labels.items())]


def nodes_running(ctx: Context) -> list[str]:
    namespace, _ = target(ctx)
    selector = ",".join(f"{k}={v}" for k, v in (read(ctx).spec.selector.match_labels or {}).items())
    pods = client.CoreV1Api(ctx.control.api).list_namespaced_pod(namespace, label_selector=selector,
                                                                 _request_timeout=10).items
    return sorted({p.spec.node_name for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp})


def look(ctx: Context) -> str:
    obj = read(ctx)
    spec = obj.spec.template.spec
    spread = bool(spec.topology_spread_constraints) or bool(spec.affinity and spec.affinity.pod_anti_affinity)
    pdbs = [p.metadata.name for p in covering_pdbs(ctx, obj.spec.template.metadata.labels or {})]
    ctx.state.update(replicas=obj.spec.replicas or 0, spread=spread, pdbs=pdbs)
    return (f"{ctx.params['kind']} {ctx.params['workload']}: {obj.spec.replicas} replicas on "
            f"{', '.join(nodes_running(ctx)) or 'no node'}; anti-affinity or spread: {'yes' if spread else 'no'}; "
            f"PDBs: {', '.join(pdbs) or 'none'}")


def scale(ctx: Context) -> str:
    want = max(int(ctx.params["replicas"]), 2)
    if ctx.state["replicas"] >= want:
        return f"already {ctx.state['replicas']} replicas"
    patch(ctx, {"spec": {"replicas": want}})
    return f"scaled from {ctx.state['replicas']} to {want} replicas"


def pdb_name(ctx: Context) -> str:
    return f"{target(ctx)[1]}-hakit"


def add_pdb(ctx: Context) -> str:
    if ctx.state["pdbs"]:
        return f"covered already by {', '.join(ctx.state['pdbs'])}"
    namespace, _ = target(ctx)
    body = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": pdb_name(ctx), "namespace": namespace,
                         "labels": {"app.kubernetes.io/managed-by": "hakit"}},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": read(ctx).spec.selector.match_labels}}}
    client.PolicyV1Api(ctx.control.api).create_namespaced_pod_disruption_budget(namespace, body, _request_timeout=10)
    ctx.state["created_pdb"] = True
    return f"created PodDisruptionBudget {namespace}/{pdb_name(ctx)} (maxUnavailable: 1)"


def remove_pdb(ctx: Context) -> str:
    if not ctx.state.get("created_pdb"):
        return "no PDB was created"
    client.PolicyV1Api(ctx.control.api).delete_namespaced_pod_disruption_budget(
        pdb_name(ctx), target(ctx)[0], _request_timeout=10)
    return f"deleted {pdb_name(ctx)}"


def spread(ctx: Context) -> str:
    done = []
    if not ctx.state["spread"]:
        labels = read(ctx).spec.selector.match_labels
        patch(ctx, {"spec": {"template": {"spec": {"topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
             "labelSelector": {"matchLabels": labels}}]}}}})
        done.append("added a spread constraint on kubernetes.io/hostname")
    if len(nodes_running(ctx)) < 2:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        patch(ctx, {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}})
        done.append("restarted the rollout so the scheduler places the replicas again")
    return "; ".join(done) or "already on several nodes"


def disruptions_allowed(ctx: Context, labels: dict[str, str]) -> int:
    """The most any covering PDB allows: the disruption controller updates it after the rollout, not with it."""
    return max(((p.status.disruptions_allowed or 0) if p.status else 0 for p in covering_pdbs(ctx, labels)), default=0)


def spread_out(ctx: Context) -> None:
    def settled() -> bool:
        obj = read(ctx)
        ready = obj.status.ready_replicas or 0
        current = getattr(obj.status, "updated_replicas", None) or getattr(obj.status, "current_replicas", 0) or 0
        return (ready >= (obj.spec.replicas or 0) and current >= (obj.spec.replicas or 0)
                and len(nodes_running(ctx)) >= 2
                and disruptions_allowed(ctx, obj.spec.template.metadata.labels or {}) >= 1)
    try:
        wait.until(settled, 180, "every replica ready, on at least two nodes, a PDB allowing one disruption",
                   interval=2.0,
                   why=lambda: f"running on {', '.join(nodes_running(ctx)) or 'no node'}; PDB allows "
                               f"{disruptions_allowed(ctx, read(ctx).spec.template.metadata.labels or {})}")
    except wait.WaitTimeout as e:
        raise HakitError(f"{e}: is there a second schedulable node with room?") from None


RUNBOOK = Runbook(
    name="workload-spread",
    title="Spread a critical workload so one node's loss or drain cannot stop it",
    summary="At least two replicas, a PDB that allows one disruption, replicas on different nodes.",
    params=[Param("workload", "NAMESPACE/NAME of the workload, e.g. kube-system/coredns"),
            Param("kind", "the workload's kind", "Deployment", ("Deployment", "StatefulSet")),
            Param("replicas", "replicas to scale to when it has fewer (at least 2)", "2")],
    steps=[
        Step("look", "See its replicas, where they run, its anti-affinity and the PDBs covering it",
             lambda ctx: f"GET the {ctx.params['kind']}, its pods and the PDBs of {target(ctx)[0]}", look,
             changes=False),
        Step("scale", "Scale to at least two replicas",
             lambda ctx: f"PATCH spec.replicas = {max(int(ctx.params['replicas']), 2)} (only if fewer)", scale),
        Step("pdb", "Add a PodDisruptionBudget allowing one disruption, where no PDB covers it",
             lambda ctx: f"CREATE PodDisruptionBudget {target(ctx)[0]}/{pdb_name(ctx)}: maxUnavailable 1, the "
                         "workload's selector (only if none covers it)",
             add_pdb, undo=remove_pdb, undo_text="delete the PDB this run created"),
        Step("spread", "Spread the replicas over nodes, and wait until they are",
             lambda ctx: "PATCH a topologySpreadConstraint on kubernetes.io/hostname (only without anti-affinity "
                         "or spread); rollout restart when all replicas share a node; wait up to 180 s",
             spread, verify=spread_out),
    ],
    checks=["WL-003"],
)
