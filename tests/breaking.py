"""Helpers for the break tests: run checks as a user would (the CLI, in a
subprocess) and hold a lab broken in one way while they look at it."""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from hakit import wait
from hakit.cluster import Cluster
from hakit.inventory import load
from hakit.lab.netns import Lab

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
               timeout: float = 900) -> tuple[int, dict[str, dict]]:
    out = tmp_path / f"results-{'-'.join(ids)}.json"
    out.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "hakit.cli", "check", "--inventory", str(inventory)]
    argv += ["--disruptive"] if disruptive else []
    argv += [a for i in ids for a in ("--check", i)] + ["--json", str(out), *options, "--", *pytest_args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    results: dict[str, dict] = {}
    for r in json.loads(out.read_text())["results"] if out.exists() else []:
        kept = results.get(r["check"]["id"])   # a parametrised check (MON-D01): the worst, else the last
        if kept is None or WORST.index(r["outcome"]) <= WORST.index(kept["outcome"]):
            results[r["check"]["id"]] = r
    assert results, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.returncode, results


def assert_breaks(lab: Lab | None, tmp_path: Path, check_id: str, breaker: Callable[[], AbstractContextManager[object]],
                  cause: str, within: float = 30, inventory: Path | None = None, disruptive: bool = False) -> None:
    """Healthy → pass; broken → fails (within `within` s) naming `cause`; restored → pass again.
    A disruptive check's passes are the full disruptive audit's (tests/lab/test_disruptive.py, and
    the kubeadm tier's): each run of one costs a fault and a minute, so here it runs broken only."""
    inv = inventory or lab.paths.inventory  # type: ignore[union-attr]

    def outcome() -> dict:
        return run_checks(inv, tmp_path, check_id, disruptive=disruptive)[1][check_id]

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
    cluster.wait_steady(timeout, "the lab to settle")

    def rest() -> list[str]:
        try:
            deps = client.AppsV1Api(cluster.api).list_namespaced_deployment("kube-system", _request_timeout=5).items
        except Exception as e:  # noqa: BLE001 - the API through the VIP may be moving: not settled yet
            return [f"kube-system Deployments cannot be listed: {type(e).__name__}"]
        short = [d for d in deps if (d.status.ready_replicas or 0) < (d.spec.replicas or 0)]
        return [f"{s.host}/{s.component}" for s in lab.status() if not s.healthy] + [
            f"Deployment {d.metadata.name}" for d in short]
    wait.until(lambda: not rest(), timeout, "the lab's processes up and kube-system's Deployments ready",
               interval=1.0, why=lambda: ", ".join(rest()))
