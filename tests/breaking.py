"""Helpers for the break tests: run checks as a user would (the CLI, in a
subprocess; polled in this process) and hold a lab broken in one way while they look at it."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import yaml

from hakit import audit, wait
from hakit.cluster import Cluster, ssh
from hakit.etcd import EtcdClient
from hakit.faults.base import journal as fault_journal
from hakit.faults.base import repair
from hakit.inventory import load
from hakit.lab import procs
from hakit.lab.netns import Lab
from hakit.selection import Selection

WORST = ["fail", "error", "warn", "skip", "pass"]
MACHINE_LOCK = Path("/run/lock/hakit-tests-machine.lock")


@contextmanager
def machine_state(change: bool) -> Iterator[None]:
    """Kernel state that every lab of this machine shares (swap: the hosts share its kernel).
    A test that changes it (marked `machine_wide`, so it runs last) holds this lock
    exclusively; the kubeadm tier, whose HOST-001 and kubelets (failSwapOn) read it and which
    runs beside the netns session, holds it shared through each test. Everyone passes a
    turnstile first, so a waiting change is not starved by the tier's next test."""
    turnstile = MACHINE_LOCK.with_suffix(".turnstile")
    with turnstile.open("a") as t, MACHINE_LOCK.open("a") as f:
        fcntl.flock(t, fcntl.LOCK_EX)
        fcntl.flock(f, fcntl.LOCK_EX if change else fcntl.LOCK_SH)
        fcntl.flock(t, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def run_checks(inventory: Path, tmp_path: Path, *ids: str, disruptive: bool = False,
               options: tuple[str, ...] = (), pytest_args: tuple[str, ...] = (),
               timeout: float = 900, in_process: bool = False) -> tuple[int, dict[str, dict]]:
    """The checks' exit code and results by id, through the CLI in a subprocess as a user runs
    them; `in_process`: through hakit.audit.run in this one (read-only checks only), for a test
    that polls a check until it sees a break: no new interpreter importing the kubernetes client
    each time (bench/import_time.py), and the same checks, plugin and results."""
    if in_process:
        assert not disruptive and not options, "in this process: read-only checks, no CLI options"
        try:
            found = audit.run(load(inventory), Selection(check=ids), quiet=True, pytest_args=pytest_args)
        finally:
            close_ssh_masters()
        code, doc, said = found.exit_code, found.document, ""
    else:
        out = tmp_path / f"results-{'-'.join(ids)}.json"
        out.unlink(missing_ok=True)
        argv = [sys.executable, "-m", "hakit.cli", "check", "--inventory", str(inventory)]
        argv += ["--disruptive"] if disruptive else []
        argv += [a for i in ids for a in ("--check", i)] + ["--json", str(out), *options, "--", *pytest_args]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        code, said = proc.returncode, proc.stdout[-2000:] + proc.stderr[-2000:]
        doc = json.loads(out.read_text()) if out.exists() else {"results": []}
    results: dict[str, dict] = {}
    for r in doc["results"]:
        kept = results.get(r["check"]["id"])   # a parametrised check (MON-D01): the worst, else the last
        if kept is None or WORST.index(r["outcome"]) <= WORST.index(kept["outcome"]):
            results[r["check"]["id"]] = r
    assert results, f"no results (exit {code}) {said}"
    return code, results


def close_ssh_masters() -> None:
    """End this process's multiplexed SSH connections, as a CLI run's end with it: the next
    run's commands must not go through a connection older than a change on the host (an sshd
    restarted with faketime hands only new connections its clock)."""
    for sock in ssh.control_dir().iterdir():
        subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "hakit"], capture_output=True, timeout=10)


def result(inventory: Path, tmp_path: Path, check_id: str) -> dict:
    """One read-only check's result, run in this process: what a test polls until it sees a break."""
    return run_checks(inventory, tmp_path, check_id, in_process=True)[1][check_id]


def assert_breaks(lab: Lab | None, tmp_path: Path, check_id: str, breaker: Callable[[], AbstractContextManager[object]],
                  cause: str, within: float = 30, inventory: Path | None = None, disruptive: bool = False) -> None:
    """Healthy → pass; broken → fails (within `within` s) naming `cause`; restored → pass again.
    A disruptive check's passes are the full disruptive audit's (tests/lab/test_disruptive.py, and
    the kubeadm tier's): each run of one costs a fault and a minute, so here it runs broken only."""
    inv = inventory or lab.paths.inventory  # type: ignore[union-attr]

    def outcome() -> dict:   # polled in this process; the CLI's own exit code is asserted once below
        if not disruptive:
            return result(inv, tmp_path, check_id)
        return run_checks(inv, tmp_path, check_id, disruptive=True)[1][check_id]

    if not disruptive:
        wait.until(lambda: outcome()["outcome"] == "pass", 90,
                   f"{check_id} to pass on the healthy lab (an earlier test may still be settling)")
    with breaker():
        failed = wait.until(lambda: (r := outcome())["outcome"] in ("fail", "warn") and r, within,
                            f"{check_id} to see the break")
        assert cause in failed["message"], failed["message"]
        if not disruptive:
            assert run_checks(inv, tmp_path, check_id)[0] == 1, "a failing check must exit 1"
    if not disruptive:
        wait.until(lambda: outcome()["outcome"] == "pass", 120, f"{check_id} to pass again after restore")


@contextmanager
def stopped(lab: Lab, *where: str) -> Iterator[None]:
    """Components stopped, as 'host/component', until the block ends (whatever happens)."""
    pairs = [w.split("/") for w in where]
    try:
        for host, comp in pairs:
            lab.host(host).stop(comp)
        yield
    finally:
        for host, comp in pairs:
            lab.host(host).start(comp)


@contextmanager
def file_changed(path: Path, change: Callable[[str], str],
                 after: Callable[[], object] = lambda: None) -> Iterator[None]:
    """A file edited for the block's duration; `after` runs after each write (a reload)."""
    original = path.read_text()
    path.write_text(change(original))
    try:
        after()
        yield
    finally:
        path.write_text(original)
        after()


def lab_settled(lab: Lab, timeout: float = 180) -> None:
    """The steady state a disruptive guard asks for (hakit.cluster.steady: components, etcd,
    one VIP holder, nodes Ready), then what only a lab test needs besides: every lab process
    (monitoring's too) up and kube-system's Deployments ready. A kubelet whose connection was
    pinned to an apiserver that hung (its etcd stopped) stays NotReady a while after."""
    from kubernetes import client
    cluster = Cluster(load(lab.paths.inventory))
    if fault_journal(cluster).pending():   # left by a test that failed (and said so): not the next one's
        repair(cluster)
    cluster.wait_steady(timeout, "the lab to settle")

    def rest() -> list[str]:
        try:
            deps = client.AppsV1Api(cluster.api).list_namespaced_deployment("kube-system", _request_timeout=5).items
            namespaces = client.CoreV1Api(cluster.api).list_namespace(_request_timeout=5).items
        except Exception as e:  # noqa: BLE001 - the API through the VIP may be moving: not settled yet
            return [f"kube-system Deployments cannot be listed: {type(e).__name__}"]
        short = [d for d in deps if (d.status.ready_replicas or 0) < (d.spec.replicas or 0)]
        # an earlier test's probe namespace, its PDB already gone and its Deployment not yet (WL-006 warns)
        going = [n.metadata.name for n in namespaces
                 if n.status.phase == "Terminating" and n.metadata.name.startswith("hakit-probe-")]
        return [f"{s.host}/{s.component}" for s in lab.status() if not s.healthy] + [
            f"Deployment {d.metadata.name}" for d in short] + [f"namespace {n} being deleted" for n in going]
    wait.until(lambda: not rest(), timeout, "the lab's processes up, kube-system's Deployments ready and no "
               "probe namespace being deleted",
               interval=1.0, why=lambda: ", ".join(rest()))


def runbook(lab: Lab, *args: str, **popen: object) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "hakit.cli", "runbook", *args]
    env = {**os.environ, "HAKIT_INVENTORY": str(lab.paths.inventory)}
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env, stdin=subprocess.DEVNULL)


def journal(runs: Path) -> list[dict]:
    [path] = runs.glob("*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


@contextmanager
def hung(lab: Lab, host: str, component: str) -> Iterator[None]:
    """The component's processes frozen with SIGSTOP: running, not serving."""
    pid = lab.host(host).pid(component)
    procs.signal_group(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        procs.signal_group(pid, signal.SIGCONT)   # harmless when the runbook replaced it


def hold_fault(lab: Lab) -> subprocess.Popen[str]:
    """A separate process that injects a fault, says so, then waits to be signalled."""
    script = textwrap.dedent(f"""
        import time
        from hakit.faults.kinds import StopComponent
        from hakit.cluster import Cluster
        from hakit.inventory import load
        with StopComponent(Cluster(load({str(lab.paths.inventory)!r})), "cp3", "kube-scheduler"):
            print("injected", flush=True)
            time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "injected"
    return proc


def tightened(lab: Lab, inventory: Path, **slo: float) -> Path:
    """A copy of the lab's inventory with stricter SLOs."""
    doc = yaml.safe_load(lab.paths.inventory.read_text())
    inventory.write_text(yaml.safe_dump({**doc, "slo": {**doc.get("slo", {}), **slo}}))
    return inventory


@contextmanager
def backups_aged(lab: Lab, hours: float) -> Iterator[None]:
    snaps = list(lab.paths.backups.glob("*.db"))
    times = {p: p.stat().st_mtime for p in snaps}
    for p in snaps:
        old = time.time() - hours * 3600
        os.utime(p, (old, old))
    try:
        yield
    finally:
        for p, t in times.items():
            if p.exists():   # a runbook under test may have rotated it away
                os.utime(p, (t, t))


def etcd_of(lab: Lab, without: str | None = None) -> EtcdClient:
    """A client of the lab's etcd, optionally not talking to one host's member."""
    inv = load(lab.paths.inventory)
    skip = lab.spec.host(without).address if without else None
    return EtcdClient([e for e in inv.etcd.endpoints if not skip or skip not in e], inv.etcd.ca, inv.etcd.cert,
                      inv.etcd.key)


@contextmanager
def member_removed(lab: Lab, host: str) -> Iterator[None]:
    """`etcdctl member remove`; the restore is the member-replacement procedure:
    stop, wipe the data dir, `member add`, start with --initial-cluster-state=existing."""
    etcd = etcd_of(lab, without=host)
    [member] = [m for m in etcd.members() if m.name == host]
    etcd.remove_member(member.id)
    try:
        yield
    finally:
        fresh_member(lab, host)


def fresh_member(lab: Lab, host: str) -> None:
    """The member-replacement procedure, by hand: stop, wipe the data dir, remove the old
    member if listed, `member add`, start with --initial-cluster-state=existing."""
    etcd = etcd_of(lab, without=host)
    lab.host(host).stop("etcd")
    shutil.rmtree(lab.paths.etcd_data(host), ignore_errors=True)
    peer = f"https://{lab.spec.host(host).address}:2380"
    for m in etcd.members():
        if peer in m.peer_urls:
            etcd.remove_member(m.id)
    etcd.add_member([peer])
    lab.host(host).start("etcd", extra_args=("--initial-cluster-state=existing",))
