"""control-plane-join: add a control-plane host to the cluster, through the VIP.

kubeadm's HA procedure for stacked etcd: a fresh certificate key (the control-plane
certificates were uploaded, encrypted, by kubeadm-init; they expire after two hours),
a 15-minute join token, `kubeadm join --control-plane` on the new host. The host then
runs its own kube-apiserver, kube-controller-manager, kube-scheduler and an etcd member.
One host at a time: etcd goes from N to N+1 members, and a member that cannot start
would cost quorum on a two-member cluster, so the run refuses unless every member is
healthy first. The token and key never leave the two hosts and this process.
"""

from __future__ import annotations

from hakit.cluster import kubeadm
from hakit.cluster.probes import wait_ready
from hakit.errors import HakitError
from hakit.runbook import Context, Param, Runbook, Step


def target(ctx: Context) -> tuple[str, str]:
    return kubeadm.named(ctx.inventory.control_plane, ctx.params["host"], "control_plane.hosts")


def ready_to_join(ctx: Context) -> None:
    kubeadm.refuse_joined(ctx.control, target(ctx)[0])
    unhealthy = [m.name or m.id for m, healthy in ctx.control.etcd_members() if not healthy]
    if unhealthy:
        raise HakitError(f"etcd members not healthy: {', '.join(unhealthy)}; a new member now could cost quorum")


def look(ctx: Context) -> str:
    host = target(ctx)[0]
    members = ctx.control.etcd_members()
    via = kubeadm.a_member(ctx.control, [h.name for h in ctx.inventory.control_plane if h.name != host])
    ctx.state.update(via=via, members=len(members))
    return (f"{host} joins through {ctx.state['via']}; etcd has {len(members)} members, all healthy: "
            f"{', '.join(m.name for m, _ in members)}")


def join(ctx: Context) -> str:
    host, address = target(ctx)
    kubeadm.join(ctx.control, ctx.state["via"], host, address, control_plane=True)
    return f"{host} joined as a control plane"


def serving(ctx: Context) -> None:
    host, address = target(ctx)
    url = f"https://{address}:{ctx.inventory.apiserver_port}"
    wait_ready(url, 120)
    count = len(ctx.control.etcd_members())
    if count != ctx.state["members"] + 1:
        raise HakitError(f"etcd has {count} members after the join; expected {ctx.state['members'] + 1}")


RUNBOOK = Runbook(
    name="control-plane-join",
    title="Join a control-plane host (apiserver, controller-manager, scheduler, etcd member)",
    summary="kubeadm join --control-plane through the VIP with a fresh certificate key and a short-lived token.",
    params=[Param("host", "the control-plane host to join (one of the inventory's)")],
    steps=[
        Step("look", "Check the host is not in a cluster, and every etcd member is healthy",
             lambda ctx: f"on {ctx.params['host']}: test -e /etc/kubernetes/kubelet.conf; etcd member list "
                         "and health", look, changes=False, require=ready_to_join),
        Step("join", "Make a join token and certificate key on a member, then kubeadm join --control-plane",
             lambda ctx: f"on {ctx.state.get('via', 'a joined control plane')}: kubeadm token create --ttl 15m; "
                         "kubeadm init phase upload-certs --upload-certs; on "
                         f"{ctx.params['host']}: kubeadm join --config {kubeadm.CONFIG} (0600, deleted after)",
             join, require=ready_to_join, verify=serving),
    ],
    checks=["API-001", "CP-001"],
)
