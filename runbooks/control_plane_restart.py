"""control-plane-restart: restart a stuck kube-apiserver, kube-controller-manager,
kube-scheduler or etcd on one host, and see it serve again.

"Stuck" is a process that runs but does not serve (hung, wedged on a lost
connection): its service manager thinks all is well, so nobody restarts it.
The restart is what `systemctl restart` or a kubelet does to a static pod: stop
(escalating to SIGKILL for a process that ignores SIGTERM), then start.
"""

from __future__ import annotations

from kubernetes import client

from hakit import wait
from hakit.cluster.components import restart_command
from hakit.cluster.probes import READYZ
from hakit.errors import HakitError
from hakit.etcd import Quorum
from hakit.runbook import Context, Param, Runbook, Step
from hakit.snapshot import is_ready

COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "kubelet")


def where(ctx: Context) -> tuple[str, str]:
    """A control-plane host of the inventory; for component=kubelet, any node (reached at its InternalIP)."""
    host, component = ctx.params["host"], ctx.params["component"]
    if host not in {h.name for h in ctx.inventory.control_plane} and component != "kubelet":
        raise HakitError(f"host={host}: not a control-plane host of the inventory")
    return host, component


def affordable(ctx: Context) -> str:
    """A restart takes the component away for a moment: the rest must carry the cluster."""
    host, component = where(ctx)
    health = ctx.control.health()
    if component == "etcd":
        mine = ctx.control.etcd_member_of(host)
        members = ctx.control.etcd_members()
        q = Quorum.of([(m, ok and (mine is None or m.id != mine.id)) for m, ok in members])
        if q.tolerance < 0:
            raise HakitError(f"only {q.healthy} other voting etcd member(s) are healthy, {q.needed} needed: "
                             f"restarting {host}'s would lose quorum")
        return f"{q.healthy} other voting etcd members healthy ({q.needed} needed): quorum holds during the restart"
    if component == "kube-apiserver":
        serving = [h.host for h in health if h.component == READYZ and h.ok and h.host != host]
        if not serving:
            raise HakitError("no other apiserver serves: restarting this one is an outage; fix another first")
        return f"other apiservers serve: {', '.join(serving)}"
    if component == "kubelet":
        return "a kubelet restart leaves the node's containers running"
    return "leader election hands the work to another instance during the restart"


def serving(ctx: Context) -> bool:
    host, component = where(ctx)
    if component == "kube-apiserver":
        return any(h.ok for h in ctx.control.health() if h.host == host and h.component == READYZ)
    if component == "etcd":
        return any(h.ok for h in ctx.control.health() if h.host == host and h.component == "etcd health")
    if component == "kubelet":   # it serves when its node reports Ready again
        return is_ready(client.CoreV1Api(ctx.control.api).read_node(host, _request_timeout=5))
    return ctx.control.is_active(host, component)


def restart(ctx: Context) -> str:
    host, component = where(ctx)
    ctx.control.restart(host, component)
    return f"{component} on {host} stopped and started"


def running(ctx: Context) -> None:
    host, component = where(ctx)
    if not ctx.control.is_active(host, component):
        raise HakitError(f"{component} on {host} is not running after the start")


def wait_serving(ctx: Context) -> str:
    """Until it serves (for etcd, until the host's apiserver, which reads it, is ready too); then,
    for what kubelets depend on, until every node is Ready again (a kubelet whose connection was on
    the broken apiserver reports again within its lease)."""
    host, component = where(ctx)
    wait.until(lambda: serving(ctx), 120, f"{component} on {host} to serve again", interval=1.0)
    if component == "etcd":   # the host's apiserver reads its local member: it is ready again only after
        wait.until(lambda: any(h.ok for h in ctx.control.health() if h.host == host and h.component == READYZ),
                   120, f"the kube-apiserver on {host} to be ready again on its etcd", interval=1.0)
    if component in ("etcd", "kube-apiserver", "kubelet"):
        core = client.CoreV1Api(ctx.control.api)
        wait.until(lambda: all(is_ready(n) for n in core.list_node(_request_timeout=5).items), 120,
                   "every node to be Ready again", interval=2.0,
                   why=lambda: "not Ready: " + ", ".join(n.metadata.name for n in core.list_node().items
                                                          if not is_ready(n)))
        return f"{component} on {host} serves; every node Ready"
    return f"{component} on {host} serves"


def commands(ctx: Context) -> str:
    return restart_command(ctx.inventory.fault_control, *where(ctx))


RUNBOOK = Runbook(
    name="control-plane-restart",
    title="Restart a stuck or stopped control-plane component (or a node's kubelet) on one host",
    summary="For a component that is down or runs but does not serve: restart it, only while the others can "
            "carry the cluster, and wait until it serves and the control-plane checks pass.",
    params=[Param("host", "the control-plane host, as named in the inventory (for kubelet: any node)"),
            Param("component", "what to restart", choices=COMPONENTS)],
    steps=[
        Step("look", "See whether it serves now", lambda ctx: "{} health on {}".format(*reversed(where(ctx))),
             lambda ctx: "serving" if serving(ctx) else "not serving", changes=False),
        Step("restart", "Restart it (stop, escalating to SIGKILL, then start)", commands, restart, verify=running,
             require=affordable, require_text="the others carry the cluster meanwhile (etcd quorum without it, "
                                              "another apiserver serving)"),
        Step("serving", "Wait until it serves again",
             lambda ctx: "poll its health every second, up to 120 s; for etcd, an apiserver or a kubelet, then "
                         "every node Ready, up to 120 s", wait_serving, changes=False),
    ],
    checks=["API-002", "ETCD-002", "CP-001", "CP-002", "CP-003", "WL-001"],
)
