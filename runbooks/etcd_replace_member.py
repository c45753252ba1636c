"""etcd-replace-member: replace a failed etcd member with a fresh one on the same host.

A member whose disk died or whose data is corrupt does not come back by restarting
it. etcd's procedure ("Replacing a failed etcd member") is: remove it from the
cluster, start it over with an empty data dir, add it back as a new member, and let
it copy the data from the leader. The cluster runs on the other members throughout,
so they must hold quorum on their own; when they do not, restore from a snapshot
(etcd-restore-snapshot) instead. The old data dir is moved aside, not deleted.
"""

from __future__ import annotations

from hakit import wait
from hakit.cluster import datadir
from hakit.cluster.components import render
from hakit.cluster.probes import wait_ready
from hakit.errors import HakitError, UnreachableError
from hakit.etcd import PEER_PORT, Quorum
from hakit.runbook import Context, Param, Runbook, Step

QUORUM = "the other members, healthy, hold quorum without it"


def host(ctx: Context) -> str:
    name = ctx.params["host"]
    if name not in {h.name for h in ctx.inventory.control_plane}:
        raise HakitError(f"host={name}: not a control-plane host of the inventory")
    return name


def peer_url(ctx: Context) -> str:
    return f"https://{ctx.control.addresses[host(ctx)]}:{PEER_PORT}"


def quorum_without_it(ctx: Context) -> str:
    """The other voting members, healthy, must be a majority of the voters with the member in
    it (matched by its peer URL: a name can be stale or repeated)."""
    name, peer = host(ctx), peer_url(ctx)
    others = [(m, ok) for m, ok in ctx.control.etcd_members() if peer not in m.peer_urls and not m.is_learner]
    healthy = [m.name for m, ok in others if ok]
    need = Quorum(voters=len(others) + 1, healthy=len(healthy)).needed
    if len(healthy) < need:
        raise HakitError(f"only {len(healthy)} of the other {len(others)} members are healthy "
                         f"({', '.join(healthy) or 'none'}); the cluster needs {need} while {name} is replaced: "
                         "restore from a snapshot instead (hakit runbook show etcd-restore-snapshot)")
    return f"healthy others: {', '.join(healthy)} ({need} needed for quorum)"


def look(ctx: Context) -> str:
    """Which member is the host's, whether it is sick, and whether the others carry the cluster."""
    etcd, name, peer = ctx.control.etcd(), host(ctx), peer_url(ctx)
    members = etcd.members()
    mine = [m for m in members if peer in m.peer_urls]
    others = [m for m in members if m not in mine]
    quorum = quorum_without_it(ctx)
    endpoint = ctx.control.etcd_endpoint(name)
    if mine and endpoint and etcd.health(endpoint)[0] and ctx.params["force"] != "yes":
        raise HakitError(f"{name}'s member is healthy: there is nothing to replace (force=yes replaces it anyway)")
    ctx.state["member_id"] = mine[0].id if mine else ""
    ctx.state["initial_cluster"] = ",".join([f"{m.name}={m.peer_urls[0]}" for m in others] + [f"{name}={peer}"])
    ctx.state["aside"] = datadir.aside(data_dir(ctx), "replaced")
    what = f"member id {mine[0].id}, unhealthy" if mine else "no longer a member"
    return f"{name}: {what}; {quorum}"


def data_dir(ctx: Context) -> str:
    return ctx.inventory.host_path("etcd_data", host(ctx))


def stop(ctx: Context) -> str:
    ctx.control.stop(host(ctx), "etcd")
    return f"etcd on {host(ctx)} stopped"


def stopped(ctx: Context) -> None:
    if ctx.control.is_active(host(ctx), "etcd"):
        raise HakitError(f"etcd on {host(ctx)} still runs after the stop")


def remove(ctx: Context) -> str:
    etcd, member = ctx.control.etcd(), ctx.state["member_id"]
    if member and any(m.id == member for m in etcd.members()):
        etcd.remove_member(member)
        return f"removed member {member}"
    return "not a member: nothing to remove"


def move_aside(ctx: Context) -> str:
    """The member's data (member/ inside the data dir) goes aside; the data dir itself stays,
    so this works where it is a mount point (the usual production layout)."""
    out = ctx.control.must(host(ctx), "moving the member's data aside", datadir.SET_ASIDE,
                           data_dir(ctx), ctx.state["aside"])
    return out.strip()


def data_gone(ctx: Context) -> None:
    if ctx.control.run(host(ctx), "test -e %s", f"{data_dir(ctx)}/member").rc == 0:
        raise HakitError(f"{data_dir(ctx)}/member still exists on {host(ctx)}")


def add(ctx: Context) -> str:
    etcd, peer = ctx.control.etcd(), peer_url(ctx)
    if any(peer in m.peer_urls for m in etcd.members()):   # a resumed run that added it already
        return f"{peer} is a member already"
    return f"added member {etcd.add_member([peer])} at {peer}"


def rejoin(ctx: Context) -> str:
    etcd = ctx.control.etcd()
    ctx.state["revision"] = max(etcd.status(e).revision for e in etcd.endpoints
                                if e != ctx.control.etcd_endpoint(host(ctx)) and etcd.health(e)[0])
    ctx.control.rejoin(host(ctx), ctx.state["initial_cluster"])
    return f"etcd on {host(ctx)} started with --initial-cluster-state=existing"


def caught_up(ctx: Context) -> str:
    """Healthy, and holding at least the revision the cluster had when it started."""
    etcd, endpoint = ctx.control.etcd(), ctx.control.etcd_endpoint(host(ctx))
    if endpoint is None:
        raise HakitError(f"no etcd endpoint of the inventory is on {host(ctx)}'s address")

    def synced() -> bool:
        try:
            return etcd.health(endpoint)[0] and etcd.status(endpoint).revision >= ctx.state["revision"]
        except UnreachableError:   # still starting
            return False
    def why() -> str:
        try:
            ok, detail = etcd.health(endpoint)
            return f"revision {etcd.status(endpoint).revision}" if ok else detail
        except UnreachableError as e:
            return str(e)
    wait.until(synced, 120, f"{host(ctx)}'s member to be healthy at revision {ctx.state['revision']}", interval=1.0,
               why=why)
    return f"{host(ctx)} healthy at revision {etcd.status(endpoint).revision} (>= {ctx.state['revision']})"


def apiserver_serves(ctx: Context) -> str:
    """The host's apiserver reads its local member (stacked etcd): while that was gone its
    liveness probe failed, and on kubeadm the kubelet may hold it in CrashLoopBackOff for up to
    5 min after. Not serving within 30 s: recreated (its static pod parked and put back), which
    starts it at once."""
    h = next(x for x in ctx.inventory.control_plane if x.name == host(ctx))
    url = f"https://{h.address}:{ctx.inventory.apiserver_port}"
    try:
        wait_ready(url, 30, f"{h.name}'s apiserver to serve")
        return f"{h.name}'s apiserver serves"
    except wait.WaitTimeout:
        ctx.control.stop(h.name, "kube-apiserver")
        ctx.control.start(h.name, "kube-apiserver")
    wait_ready(url, 180, f"{h.name}'s apiserver to serve after its restart")
    return f"{h.name}'s apiserver did not serve within 30 s; restarted, and it serves"


def etcdctl(ctx: Context, command: str) -> str:
    return f"etcdctl --endpoints={','.join(ctx.control.etcd().endpoints)} {command}"


RUNBOOK = Runbook(
    name="etcd-replace-member",
    title="Replace a failed etcd member with a fresh one on the same host",
    summary="For a member that lost its data or will not come back: while the others hold quorum, remove it, "
            "move its data dir aside, add it back as a new member and let it sync from the leader.",
    params=[Param("host", "the control-plane host whose etcd member failed"),
            Param("force", "replace the member even if it is healthy", "no", choices=("no", "yes"))],
    steps=[
        Step("look", "Find the member and make sure the others hold quorum without it",
             lambda ctx: etcdctl(ctx, "member list") + "; GET /health on each member", look, changes=False),
        Step("stop", "Stop etcd on the host",
             lambda ctx: f"on {host(ctx)}: {render(ctx.inventory.fault_control, 'stop', host(ctx), 'etcd')}",
             stop, verify=stopped, require=quorum_without_it, require_text=QUORUM),
        Step("remove", "Remove the failed member from the cluster",
             lambda ctx: etcdctl(ctx, f"member remove {ctx.state.get('member_id') or '<its member id>'}"), remove,
             require=quorum_without_it, require_text=QUORUM),
        Step("move-aside", "Move its data aside (kept, not deleted): it rejoins empty",
             lambda ctx: f"on {host(ctx)}: mv {data_dir(ctx)}/member "
                         f"{ctx.state.get('aside', datadir.aside(data_dir(ctx), 'replaced'))}/",
             move_aside, verify=data_gone),
        Step("add", "Add it back as a new member",
             lambda ctx: etcdctl(ctx, f"member add {host(ctx)} --peer-urls={peer_url(ctx)}"), add),
        Step("rejoin", "Start etcd on the host as a member joining the existing cluster",
             lambda ctx: f"on {host(ctx)}: " + render(
                 ctx.inventory.fault_control, "rejoin", host(ctx), "etcd", ctx.state.get("initial_cluster", ""))
             + ("" if "initial_cluster" in ctx.state else "  (with the --initial-cluster the look step finds)"),
             rejoin),
        Step("caught-up", "Wait until it is healthy and has caught up with the cluster",
             lambda ctx: "poll its /health and revision every second, up to 120 s", caught_up, changes=False),
        Step("apiserver", "Make sure the host's apiserver serves again (it reads this member)",
             lambda ctx: f"GET https://{host(ctx)}:{ctx.inventory.apiserver_port}/readyz for up to 30 s; if it does "
                         f"not answer, on {host(ctx)}: " + render(ctx.inventory.fault_control, "stop", host(ctx),
                                                                  "kube-apiserver") + " then start",
             apiserver_serves),
    ],
    checks=["ETCD-001", "ETCD-002", "ETCD-003", "ETCD-007", "API-002"],
)
