"""etcd-restore-snapshot: disaster recovery of the whole etcd cluster from a snapshot.

For when quorum is lost for good, or the data is wrong everywhere: every member is
rebuilt from one snapshot (etcd's "Disaster recovery" and Kubernetes' "Restoring an
etcd cluster"). Nothing may write to etcd meanwhile, and nothing may keep a cache of
the newer state, so the apiservers, controller managers and schedulers are stopped
first and started last. The restore bumps the revision and marks it compacted, so
clients watching from a revision the snapshot never saw re-list instead of trusting
a cache. The kubelets are restarted as that guide recommends: a kubelet that talks to
its own apiserver (kubeadm's default since 1.33) is otherwise still busy stopping pods
minutes later, and would not start them again. Every member's old data dir is moved
aside, not deleted. Everything written after the snapshot is lost: that is the price,
and `look` says how old it is.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kubernetes import client
from kubernetes.client.rest import ApiException
from urllib3.exceptions import HTTPError

from hakit import wait
from hakit.cluster import datadir, ssh
from hakit.cluster.components import render
from hakit.cluster.probes import readyz
from hakit.errors import HakitError, UnreachableError
from hakit.etcd import PEER_PORT, Quorum
from hakit.runbook import Context, Param, Runbook, Step
from hakit.validate import IMAGE

API = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
LEADERS = API[1:]
BUMP = 1_000_000_000   # what Kubernetes' docs suggest: past any revision a client saw


def snapshot(ctx: Context) -> Path:
    if ctx.params["snapshot"]:
        return Path(ctx.params["snapshot"])
    where = ctx.inventory.etcd.backup_dir
    newest = max(Path(where).glob("*.db"), key=lambda p: p.stat().st_mtime, default=None) if where else None
    if newest is None:
        raise HakitError(f"no snapshot given and none in etcd.backup_dir ({where or 'unset'}): pass snapshot=PATH")
    return newest


def hosts(ctx: Context) -> list[str]:
    return [h.name for h in ctx.inventory.control_plane]


def initial_cluster(ctx: Context) -> str:
    """Every control-plane host as a member, named as kubeadm names them (the host name)."""
    return ",".join(f"{h.name}=https://{h.address}:{PEER_PORT}" for h in ctx.inventory.control_plane)


def data_dir(ctx: Context, host: str) -> str:
    return ctx.inventory.host_path("etcd_data", host)


def on_host(ctx: Context, host: str) -> str:
    """Where the snapshot is copied on each host: in its data dir's filesystem, 0600."""
    return f"{data_dir(ctx, host)}/{datadir.SNAPSHOT}"


def restored_dir(ctx: Context, host: str) -> str:
    return f"{data_dir(ctx, host)}/{datadir.RESTORED}"


def quorum_lost(ctx: Context) -> str:
    """A restore throws away everything written since the snapshot: only for a cluster that
    cannot serve (quorum lost) unless the operator says force=yes."""
    try:
        q = Quorum.of(ctx.control.etcd_members())
    except UnreachableError as e:
        return f"etcd does not answer ({e}): quorum is lost"
    if q.tolerance >= 0 and ctx.params["force"] != "yes":
        raise HakitError(f"etcd has quorum ({q.healthy} of {q.voters} voting members healthy): a restore would "
                         "throw away everything written since the snapshot. Repair members instead "
                         "(etcd-replace-member), or pass force=yes to restore anyway")
    return f"{q.healthy} of {q.voters} voting members healthy" + (": quorum is lost" if q.tolerance < 0 else
                                                                  "; restoring anyway (force=yes)")


def look(ctx: Context) -> str:
    snap = snapshot(ctx)
    if not snap.is_file():
        raise HakitError(f"snapshot {snap}: no such file")
    done = subprocess.run([ctx.tool("etcdutl"), "snapshot", "status", str(snap), "-w", "json"],
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise HakitError(f"etcdutl snapshot status {snap}: {(done.stderr or done.stdout).strip()[:200]}")
    status = json.loads(done.stdout)
    try:   # a cluster that still answers must name its members as the restore will
        live = sorted(m.name for m in ctx.control.etcd().members())
    except UnreachableError:
        live = []
    if live and live != sorted(hosts(ctx)):
        raise HakitError(f"etcd's members are named {', '.join(live)}, the inventory's hosts "
                         f"{', '.join(hosts(ctx))}: the restore names members after the hosts; make them agree")
    age = (time.time() - snap.stat().st_mtime) / 60
    limit = float(ctx.params["max_age_hours"])
    if age > limit * 60:
        raise HakitError(f"snapshot {snap} is {age / 60:.1f} h old (max_age_hours={limit:g}): everything since "
                         "would be lost; pass a newer snapshot, or max_age_hours=N to accept it")
    ctx.state.update(snapshot=str(snap), revision=int(status["revision"]), stamp=time.strftime(
        "%Y%m%dT%H%M%SZ", time.gmtime()))
    return (f"{snap}: revision {status['revision']}, {status['totalKey']} keys, hash {status['hash']}, "
            f"{age:.0f} min old: everything written since is lost; members: {initial_cluster(ctx)}")


def etcdutl(ctx: Context, host: str) -> tuple[str, tuple[str, ...]]:
    """etcdutl on host, as `room` found it (the state is the journal's: its image is checked again)."""
    image = ctx.state.get("etcdutl", {}).get(host, "")
    if image and not IMAGE.fullmatch(image):
        raise HakitError(f"the run's state names etcd image {image[:80]!r} for {host}: not an image reference")
    return datadir.etcdutl(ctx.inventory.host_path("etcdutl", host), image, data_dir(ctx, host))


def find_etcdutl(ctx: Context, host: str) -> str | None:
    """"" when the host's own etcdutl runs, else the etcd image whose etcdutl runs there;
    None when neither does."""
    if not ctx.control.run(host, "%s version", ctx.inventory.host_path("etcdutl", host)).rc:
        return ""
    image = ctx.control.run(host, datadir.ETCD_IMAGE).stdout.strip()
    if not IMAGE.fullmatch(image):
        return None
    template, args = datadir.etcdutl("", image, data_dir(ctx, host))
    return None if ctx.control.run(host, template + " version", *args).rc else image


def room(ctx: Context) -> str:
    """Every host runs etcdutl (its own, or the one in etcd's image: kubeadm installs no other),
    and its data-dir filesystem has room for the copy and the restored db: found before
    anything is stopped."""
    found = {h: find_etcdutl(ctx, h) for h in hosts(ctx)}
    missing = [h for h, image in found.items() if image is None]
    if missing:
        raise HakitError(f"etcdutl ({ctx.inventory.host_path('etcdutl', missing[0])}) does not run on "
                         f"{', '.join(missing)}, nor from etcd's image there: install etcd's etcdutl, or name it "
                         "in control_plane.paths.etcdutl")
    ctx.state["etcdutl"] = found
    need = datadir.space_needed(Path(ctx.state["snapshot"]).stat().st_size)
    free = {h: int(ctx.control.must(h, "reading free space", datadir.FREE_BYTES, data_dir(ctx, h)).split()[0])
            for h in hosts(ctx)}
    short = [f"{h} ({b / 2**20:.0f} MiB free)" for h, b in free.items() if b < need]
    if short:
        raise HakitError(f"not enough space for the restore ({need / 2**20:.0f} MiB needed) on {', '.join(short)}")
    images = sorted({image for image in found.values() if image})
    return (f"etcdutl: {'from ' + ', '.join(images) if images else 'the hosts’ own'}; {need / 2**20:.0f} MiB needed; "
            "free: " + ", ".join(f"{h} {b / 2**20:.0f} MiB" for h, b in free.items()))


def copy(ctx: Context) -> str:
    snap, digest = Path(ctx.state["snapshot"]), sha256(Path(ctx.state["snapshot"]))
    for host in hosts(ctx):
        ctx.control.upload(host, snap, on_host(ctx, host))   # 0600: it holds every Secret
        got = ctx.control.run(host, "sha256sum -- %s", on_host(ctx, host)).stdout.split()[:1]
        if got != [digest]:
            raise HakitError(f"the copy on {host} does not match the snapshot (sha256 {got} != {digest})")
    return f"copied to {', '.join(hosts(ctx))} (sha256 {digest[:16]}…, mode 0600)"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def each(ctx: Context, action: str, components: tuple[str, ...]) -> str:
    """On all hosts at once (a graceful apiserver stop takes seconds; the outage is running),
    the components of one host in order."""
    def on(host: str) -> None:
        for component in components:
            getattr(ctx.control, action)(host, component)
    with ThreadPoolExecutor(max_workers=len(hosts(ctx))) as pool:
        list(pool.map(on, hosts(ctx)))   # list(): the first error of any host is raised here
    return f"{action}: {', '.join(components)} on {', '.join(hosts(ctx))}"


def none_running(components: tuple[str, ...]):  # type: ignore[no-untyped-def]
    def verify(ctx: Context) -> None:
        running = [f"{h}/{c}" for h in hosts(ctx) for c in components if ctx.control.is_active(h, c)]
        if running:
            raise HakitError(f"still running: {', '.join(running)}")
    return verify


RESTORE = ("snapshot restore %s --name %s --initial-cluster %s --initial-cluster-token %s "
           "--initial-advertise-peer-urls %s --bump-revision %s --mark-compacted --data-dir %s")


def restore_command(ctx: Context, host: str) -> tuple[str, tuple[str, ...]]:
    """rm -rf the restored dir of an earlier try, then etcdutl snapshot restore into it."""
    restored = restored_dir(ctx, host)
    program, program_args = etcdutl(ctx, host)
    return (f"rm -rf -- %s && {program} {RESTORE}",
            (restored, *program_args, on_host(ctx, host), host, initial_cluster(ctx),
             f"hakit-restore-{ctx.state.get('stamp', '<time>')}",
             f"https://{ctx.control.addresses[host]}:{PEER_PORT}", str(BUMP), restored))


def restore_text(ctx: Context) -> str:
    template, args = restore_command(ctx, hosts(ctx)[0])
    return ssh.quote(template, *args)


def restore(ctx: Context) -> str:
    for host in hosts(ctx):
        template, args = restore_command(ctx, host)
        ctx.control.must(host, "etcdutl snapshot restore", template, *args)
    return f"restored a data dir for each of {', '.join(hosts(ctx))}"


def swap_args(ctx: Context, host: str) -> tuple[str, ...]:
    """The restored member/ replaces the old one, which is kept in the data dir; the data
    dir itself is never moved (it may be a mount point)."""
    return (data_dir(ctx, host), restored_dir(ctx, host),
            f"{data_dir(ctx, host)}/.hakit-before-restore-{ctx.state.get('stamp', '<time>')}", on_host(ctx, host))


def swap(ctx: Context) -> str:
    for host in hosts(ctx):
        ctx.control.must(host, "swapping in the restored data", datadir.SWAP_IN_RESTORED, *swap_args(ctx, host))
    return (f"old member/ dirs kept in .hakit-before-restore-{ctx.state['stamp']} inside each data dir; "
            "snapshot copies removed")


def etcd_healthy(ctx: Context) -> str:
    etcd = ctx.control.etcd()

    def restored() -> bool:
        try:
            return all(etcd.health(e)[0] and etcd.status(e).revision >= ctx.state["revision"] + BUMP
                       for e in etcd.endpoints)
        except UnreachableError:
            return False
    wait.until(restored, 180, "every member healthy at the restored revision", interval=1.0)
    members = sorted(m.name for m in etcd.members())
    if members != sorted(hosts(ctx)):
        raise HakitError(f"etcd lists members {members}, expected {sorted(hosts(ctx))}")
    return f"{len(members)} members healthy, revision {etcd.status(etcd.endpoints[0]).revision}"


def api_ready(ctx: Context) -> str:
    def ready() -> bool:
        return readyz(ctx.inventory.vip_url) == "ok"
    wait.until(ready, 180, f"{ctx.inventory.vip_url}/readyz", interval=1.0)
    return f"{ctx.inventory.vip_url}/readyz: ok"


def leaders(ctx: Context) -> str:
    """The restored Leases name the leaders of the snapshot's time: the new instances wait
    one lease duration from when they first see them, then take over."""
    coord = client.CoordinationV1Api(ctx.control.api)
    ages: dict[str, float] = {}

    def renewed() -> bool:
        for name in LEADERS:
            try:
                spec = coord.read_namespaced_lease(name, "kube-system", _request_timeout=5).spec
            except (ApiException, HTTPError, OSError):
                return False
            ages[name] = time.time() - spec.renew_time.timestamp() if spec.renew_time else float("inf")
            if ages[name] > spec.lease_duration_seconds:
                return False
        return True
    wait.until(renewed, 120, "the controller manager and scheduler Leases to be renewed", interval=1.0)
    return "; ".join(f"{name} Lease renewed {age:.0f} s ago" for name, age in ages.items())


def restart_kubelets(ctx: Context) -> str:
    """Stopped, then started again whatever happened to the stop (an error, Ctrl-C)."""
    try:
        each(ctx, "stop", ("kubelet",))
    finally:
        each(ctx, "start", ("kubelet",))
    return f"kubelet restarted on {', '.join(hosts(ctx))}"


def control(ctx: Context, action: str, component: str) -> str:
    return render(ctx.inventory.fault_control, action, hosts(ctx)[0], component)


RUNBOOK = Runbook(
    name="etcd-restore-snapshot",
    title="Restore the whole etcd cluster from a snapshot (disaster recovery)",
    summary="For lost quorum or bad data on every member: stop the apiservers, rebuild every member from one "
            "snapshot, start etcd, then the apiservers. Everything written after the snapshot is lost.",
    params=[Param("snapshot", "the snapshot file, where hakit runs (default: the newest in etcd.backup_dir)", ""),
            Param("force", "restore even though etcd still has quorum (everything since the snapshot is lost)",
                  "no", choices=("no", "yes")),
            Param("max_age_hours", "refuse a snapshot older than this", "24")],
    steps=[
        Step("look", "Read the snapshot (revision, keys, hash, age) and make sure etcd cannot serve without it",
             lambda ctx: f"etcdutl snapshot status {snapshot(ctx)} -w json; GET /health on each member", look,
             changes=False, require=quorum_lost, require_text="etcd has lost quorum (or force=yes)"),
        Step("copy", "Copy the snapshot (0600) to every control-plane host and check its sha256",
             lambda ctx: ctx.on_each_host(f"scp {snapshot(ctx)} {on_host(ctx, hosts(ctx)[0])}; sha256sum"), copy,
             require=room, require_text="etcdutl runs on each host (or from its etcd image), and each data "
                                        "dir's filesystem has room"),
        Step("stop-api", "Stop the apiservers, controller managers and schedulers: nothing may write to etcd",
             lambda ctx: ctx.on_each_host("; ".join(control(ctx, "stop", c) for c in API)),
             lambda ctx: each(ctx, "stop", API), verify=none_running(API),
             undo=lambda ctx: each(ctx, "start", API), undo_text="start them again"),
        Step("stop-etcd", "Stop etcd on every host", lambda ctx: ctx.on_each_host(control(ctx, "stop", "etcd")),
             lambda ctx: each(ctx, "stop", ("etcd",)), verify=none_running(("etcd",)),
             undo=lambda ctx: "; ".join(each(ctx, "start", c) for c in (("etcd",), API)),
             undo_text="start etcd and the apiservers again, on the old data"),
        Step("restore", "Restore the snapshot into a new data dir for each member",
             lambda ctx: ctx.on_each_host(restore_text(ctx)), restore),
        Step("swap", "Move each old member/ aside (kept) and the restored one into its place",
             lambda ctx: ctx.on_each_host(ssh.quote(datadir.SWAP_IN_RESTORED, *swap_args(ctx, hosts(ctx)[0]))), swap),
        Step("restart-kubelet", "Restart the kubelet on every control-plane host: it forgets the pods it was "
             "stopping and what it read from the old data", lambda ctx: ctx.on_each_host(
                 f"{control(ctx, 'stop', 'kubelet')}; {control(ctx, 'start', 'kubelet')}"), restart_kubelets),
        Step("start-etcd", "Start etcd on every host", lambda ctx: ctx.on_each_host(control(ctx, "start", "etcd")),
             lambda ctx: each(ctx, "start", ("etcd",))),
        Step("etcd-healthy", "Wait until every member is healthy at the restored revision",
             lambda ctx: f"poll /health and revision (>= snapshot + {BUMP}) every second, up to 180 s",
             etcd_healthy, changes=False),
        Step("start-api", "Start the apiservers, controller managers and schedulers",
             lambda ctx: ctx.on_each_host("; ".join(control(ctx, "start", c) for c in API)),
             lambda ctx: each(ctx, "start", API)),
        Step("api-ready", "Wait until the API answers through the VIP",
             lambda ctx: f"GET {ctx.inventory.vip_url}/readyz every second, up to 180 s", api_ready, changes=False),
        Step("leaders", "Wait until the controller manager and scheduler lead again",
             lambda ctx: "read the kube-system Leases kube-controller-manager and kube-scheduler every second, "
                         "up to 120 s", leaders, changes=False),
    ],
    checks=["ETCD-001", "ETCD-002", "ETCD-003", "API-001", "API-002", "CP-002", "CP-003"],
)
