"""etcd-backup: take a snapshot through a healthy member, verify it, keep the newest N.

The snapshot is written where the inventory's etcd.backup_dir says (on the machine
hakit runs on), which is where ETCD-008 looks for a backup younger than the SLO.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from hakit.errors import HakitError
from hakit.etcd import EtcdClient, snapshot_name, snapshot_status, snapshots
from hakit.runbook import Context, Param, Runbook, Step


def client(ctx: Context) -> EtcdClient:
    e = ctx.inventory.etcd
    if not isinstance(e.endpoints, list) or not e.cert:
        raise HakitError("the inventory needs etcd.endpoints (a list) and a client certificate (etcd.cert/key)")
    return EtcdClient(e.endpoints, e.ca, e.cert, e.key)


def backup_dir(ctx: Context) -> Path:
    where = ctx.params["dir"] or ctx.inventory.etcd.backup_dir
    if not where:
        raise HakitError("no backup directory: pass dir=PATH or set etcd.backup_dir in the inventory")
    return Path(where)


def pick_member(ctx: Context) -> str:
    etcd = client(ctx)
    for endpoint in etcd.endpoints:
        if etcd.health(endpoint)[0]:
            ctx.state["endpoint"] = endpoint
            return f"healthy: {endpoint}"
    raise HakitError("no etcd member is healthy: a snapshot now would be of nothing "
                     "(see `hakit check --property etcd`)")


def etcdctl(ctx: Context, *args: str) -> list[str]:
    e = ctx.inventory.etcd
    return [ctx.tool("etcdctl"), f"--endpoints={ctx.state.get('endpoint', '<the healthy member>')}",
            f"--cacert={e.ca}", f"--cert={e.cert}", f"--key={e.key}", *args]


def target(ctx: Context) -> Path:
    return Path(ctx.state.setdefault("file", str(backup_dir(ctx) / snapshot_name())))


def keep(ctx: Context) -> int:
    """At least 1: rotation must never delete the snapshot just taken."""
    value = ctx.params["keep"]
    if not value.isdigit() or int(value) < 1:
        raise HakitError(f"keep={value}: expected a whole number ≥ 1 (the new snapshot is always kept)")
    return int(value)


def save(ctx: Context) -> str:
    keep(ctx)   # a bad keep= fails before anything is written
    dest = target(ctx)
    dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    done = subprocess.run(etcdctl(ctx, "snapshot", "save", str(dest)), capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise HakitError(f"etcdctl snapshot save: {(done.stderr or done.stdout).strip().splitlines()[-1]}")
    dest.chmod(0o600)   # it holds every Secret of the cluster
    return f"saved {dest} ({dest.stat().st_size} bytes)"


def saved(ctx: Context) -> None:
    if not target(ctx).is_file() or target(ctx).stat().st_size == 0:
        raise HakitError(f"{target(ctx)} is missing or empty after the save")


def verify(ctx: Context) -> str:
    status = snapshot_status(target(ctx))
    return f"hash {status['hash']}, revision {status['revision']}, {status['totalKey']} keys"


def prune(ctx: Context) -> str:
    """Only hakit's own snapshot files (etcd-<UTC time>.db), never another *.db in the directory."""
    n, snaps = keep(ctx), snapshots(backup_dir(ctx))
    for old in snaps[n:]:
        old.unlink()
    return f"kept {min(len(snaps), n)}, removed {max(len(snaps) - n, 0)}"


RUNBOOK = Runbook(
    name="etcd-backup",
    title="Take a verified etcd snapshot and keep the newest N",
    summary="A restore is only as good as the newest snapshot: take one through a healthy member, "
            "check that it reads back, and rotate old ones.",
    params=[Param("keep", "how many snapshots to keep (≥ 1)", "7"),
            Param("dir", "where to write them (default: the inventory's etcd.backup_dir)", "")],
    steps=[
        Step("pick-member", "Pick a healthy member to take the snapshot through",
             lambda ctx: "GET /health on " + ", ".join(client(ctx).endpoints), pick_member, changes=False),
        Step("save", "Save a snapshot", lambda ctx: " ".join(etcdctl(ctx, "snapshot", "save", str(target(ctx)))),
             save, verify=saved, undo=lambda ctx: target(ctx).unlink(missing_ok=True) or None,
             undo_text="delete the partial snapshot file"),
        Step("verify", "Verify that the snapshot reads back (hash, revision, keys)",
             lambda ctx: f"etcdutl snapshot status {target(ctx)} -w json", verify, changes=False),
        Step("prune", "Keep the newest snapshots, delete older ones",
             lambda ctx: f"keep the newest {ctx.params['keep']} of {backup_dir(ctx)}/etcd-<UTC time>.db", prune),
    ],
    checks=["ETCD-008"],
)
