"""worker-join: add a worker host to the cluster, through the VIP.

A 15-minute join token made on a control-plane host, `kubeadm join` on the worker with
the CA pinned by its hash, the token deleted afterwards. The worker is one of the
inventory's `workers.hosts`; it must have been through host-prepare.
"""

from __future__ import annotations

from kubernetes import client
from kubernetes.client.rest import ApiException

from hakit import wait
from hakit.cluster import kubeadm
from hakit.runbook import Context, Param, Runbook, Step


def target(ctx: Context) -> tuple[str, str]:
    return kubeadm.named(ctx.inventory.workers, ctx.params["host"], "workers.hosts")


def not_joined(ctx: Context) -> None:
    kubeadm.refuse_joined(ctx.control, target(ctx)[0])


def look(ctx: Context) -> str:
    host = target(ctx)[0]
    via = kubeadm.a_member(ctx.control, [h.name for h in ctx.inventory.control_plane])
    ctx.state.update(via=via)
    return f"{host} joins through {via}"


def join(ctx: Context) -> str:
    host, address = target(ctx)
    kubeadm.join(ctx.control, ctx.state["via"], host, address, control_plane=False)
    return f"{host} joined as a worker"


def registered(ctx: Context) -> None:
    host = target(ctx)[0]
    core = client.CoreV1Api(ctx.control.api)

    def there() -> bool:
        try:
            return bool(core.read_node(host, _request_timeout=5))
        except ApiException:
            return False
    wait.until(there, 60, f"node {host} to register", interval=1.0)


RUNBOOK = Runbook(
    name="worker-join",
    title="Join a worker host",
    summary="kubeadm join through the VIP with a short-lived token, deleted afterwards.",
    params=[Param("host", "the worker to join (one of the inventory's workers.hosts)")],
    steps=[
        Step("look", "Check the host is not in a cluster, and find a control plane to make the token on",
             lambda ctx: f"on {ctx.params['host']}: test -e /etc/kubernetes/kubelet.conf", look, changes=False,
             require=not_joined),
        Step("join", "Make a join token on a control plane, then kubeadm join",
             lambda ctx: f"on {ctx.state.get('via', 'a control plane')}: kubeadm token create --ttl 15m; on "
                         f"{ctx.params['host']}: kubeadm join --config {kubeadm.CONFIG} (0600, deleted after)",
             join, require=not_joined, verify=registered),
    ],
    checks=["API-001"],
)
