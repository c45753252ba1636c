"""node-drain-replace: move the work off a node, replace or return it, and put it back
into service.

The drain goes through the eviction API, so every PodDisruptionBudget is honoured:
an eviction a PDB refuses is retried until the budget allows it (or the time is
up, which means a workload has no room to lose a replica). DaemonSet pods and the
kubelet's own mirror pods stay, as with `kubectl drain --ignore-daemonsets`.
"""

from __future__ import annotations

import time

from kubernetes import client

from hakit import wait
from hakit.errors import HakitError
from hakit.kube import drain_plan, evict
from hakit.runbook import Context, Param, Runbook, Step
from hakit.snapshot import is_ready


def core(ctx: Context) -> client.CoreV1Api:
    return client.CoreV1Api(ctx.control.api)


def plan(ctx: Context) -> tuple[list[client.V1Pod], list[str]]:
    """kubectl drain's rules: DaemonSet and mirror pods stay; bare pods and emptyDir data
    only with the operator's say-so."""
    pods = core(ctx).list_pod_for_all_namespaces(field_selector=f"spec.nodeName={ctx.params['node']}").items
    return drain_plan(pods, ctx.params["force"] == "yes", ctx.params["delete_emptydir_data"] == "yes")


def movable(ctx: Context) -> list[client.V1Pod]:
    return plan(ctx)[0]


def drainable(ctx: Context) -> str:
    pods, refused = plan(ctx)
    if refused:
        raise HakitError(f"a drain would lose what no controller brings back: {'; '.join(refused)}")
    return f"{len(pods)} pod(s) to evict, none lost"


def look(ctx: Context) -> str:
    node = core(ctx).read_node(ctx.params["node"])
    pods = movable(ctx)
    return (f"{ctx.params['node']}: {'Ready' if is_ready(node) else 'NotReady'}, "
            f"{'cordoned' if node.spec.unschedulable else 'schedulable'}, {len(pods)} pod(s) to move: "
            + ", ".join(f"{p.metadata.namespace}/{p.metadata.name}" for p in pods))


def cordon(ctx: Context) -> str:
    ctx.control.cordon(ctx.params["node"])
    return f"{ctx.params['node']} takes no new pods"


def room_elsewhere(ctx: Context) -> None:
    """Evicted pods need a node to go to, or a PDB-protected one can never be evicted."""
    others = [n.metadata.name for n in core(ctx).list_node().items
              if n.metadata.name != ctx.params["node"] and is_ready(n) and not n.spec.unschedulable
              and not any(t.effect == "NoSchedule" for t in n.spec.taints or [])]
    if not others:
        raise HakitError(f"no other Ready, schedulable node to take {ctx.params['node']}'s pods")


def drain(ctx: Context) -> str:
    deadline = time.monotonic() + float(ctx.params["timeout"])
    refused = sum(evict(core(ctx), p, deadline) for p in movable(ctx))
    try:
        wait.until(lambda: not movable(ctx), max(deadline - time.monotonic(), 1), "the node to be empty")
    except wait.WaitTimeout:
        left = ", ".join(p.metadata.name for p in movable(ctx))
        raise HakitError(f"still on {ctx.params['node']}: {left}") from None
    return f"drained; PDBs refused {refused} eviction(s) before allowing them"


def back(ctx: Context) -> str:
    """The node Ready, and its pods Ready again (a PDB counts them, and the closing checks judge
    the PDBs)."""
    node, timeout = ctx.params["node"], float(ctx.params["timeout"])
    wait.until(lambda: is_ready(core(ctx).read_node(node)), timeout,
               f"{node} (replaced or repaired) to be Ready", interval=2.0)
    wait.until(lambda: not unready_pods(ctx), timeout, f"the pods on {node} to be Ready again", interval=2.0,
               why=lambda: "not Ready: " + ", ".join(unready_pods(ctx)[:5]))
    return f"{node} is Ready, and so are its pods"


def unready_pods(ctx: Context) -> list[str]:
    pods = core(ctx).list_pod_for_all_namespaces(field_selector=f"spec.nodeName={ctx.params['node']}",
                                                 _request_timeout=10).items
    return [f"{p.metadata.namespace}/{p.metadata.name}" for p in pods
            if p.metadata.deletion_timestamp is None and p.status and p.status.phase == "Running"
            and not is_ready(p)]


def uncordon(ctx: Context) -> str:
    ctx.control.uncordon(ctx.params["node"])
    return f"{ctx.params['node']} takes pods again"


RUNBOOK = Runbook(
    name="node-drain-replace",
    title="Drain a node respecting PDBs, replace or return it, and uncordon it",
    summary="For a node to repair or replace: cordon it, move its pods through the eviction API, wait until "
            "the node (repaired, or its replacement with the same name) is Ready, and uncordon it.",
    params=[Param("node", "the node's name"),
            Param("timeout", "seconds to wait for the drain, and again for the node to be Ready", "300"),
            Param("force", "also evict pods no controller recreates (they are lost), as kubectl drain --force",
                  "no", choices=("no", "yes")),
            Param("delete_emptydir_data", "also evict pods with emptyDir data (it is lost)", "no",
                  choices=("no", "yes"))],
    steps=[
        Step("look", "See the node and the pods that will move",
             lambda ctx: f"GET node {ctx.params['node']}; its pods, less DaemonSet and mirror pods", look,
             changes=False),
        Step("cordon", "Cordon the node", lambda ctx: f"kubectl cordon {ctx.params['node']}", cordon,
             undo=uncordon, undo_text="uncordon the node", require=drainable,
             require_text="no pod would be lost: bare pods and emptyDir data only when the parameters say so"),
        Step("drain", "Evict its pods, retrying while a PDB says not yet",
             lambda ctx: f"kubectl drain {ctx.params['node']} --ignore-daemonsets (eviction API)", drain,
             require=lambda ctx: room_elsewhere(ctx) or drainable(ctx),
             require_text="another Ready, schedulable node can take the pods, and none would be lost"),
        Step("back", "Replace or repair the node; wait until it is Ready",
             lambda ctx: f"wait for node {ctx.params['node']} Ready, up to {ctx.params['timeout']} s", back,
             changes=False),
        Step("uncordon", "Uncordon the node", lambda ctx: f"kubectl uncordon {ctx.params['node']}", uncordon),
    ],
    checks=["WL-001", "WL-002", "WL-003"],
)
