"""The Fault: a context manager named by what it breaks, whose exit is the rollback (on
success, failure, exception, Ctrl-C, SIGTERM and SIGHUP), behind a guard and a journal;
and `repair()`, which undoes from the journal whatever a SIGKILL left behind. The faults
themselves are in kinds.py."""

from __future__ import annotations

import signal
import threading
import time
from abc import ABC, abstractmethod
from types import FrameType, TracebackType

from hakit.cluster import Cluster, Health
from hakit.cluster.steady import said
from hakit.errors import PreconditionError
from hakit.faults.journal import Entry, Journal, JournalError, Owner
from hakit.faults.lock import RunLock


class FaultRefused(PreconditionError):
    """The guard said no; nothing was touched."""


def journal(control: Cluster) -> Journal:
    return Journal(control.inv.fault_journal)


_LOCKS: dict[str, RunLock] = {}   # by journal: a flock conflicts even within one process


def run_lock(control: Cluster) -> RunLock:
    """The one disruptive-run lock of this process for this cluster (re-entrant)."""
    key = str(control.inv.fault_journal)
    if key not in _LOCKS:
        _LOCKS[key] = RunLock(control)
    return _LOCKS[key]


def undo(control: Cluster, how: dict) -> object:
    """Undo a fault from its journal record alone (a later process may do it); returns what
    the undo reports (e.g. the Deployments a drain's undo restarted). The kind is one of the
    journal's closed set, validated when it was read."""
    args = {k: v for k, v in how.items() if k != "kind"}
    return {"start": control.start, "heal": control.heal, "wait_answering": control.wait_answering,
     "undrain": control.undrain, "delete_namespace": control.delete_namespace,
     "expire_silences": control.expire_silences}[how["kind"]](**args)


# Undo kinds of what a check sets up rather than breaks: journaled and repaired like a
# fault, but a fault may be injected while they are in place.
SETUP_UNDO = ("delete_namespace", "expire_silences")
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# How long a cluster may take to settle after a disruptive check's restore (the next check's
# guard refuses a sick cluster): on kubeadm, a control-plane node whose etcd was stopped stays
# NotReady for about 2.5 min after the restore (its kubelet retries the mirror pod's delete).
SETTLE_SECONDS = 300.0
# How long the guard waits out what is unsteady before it refuses: longer than a VIP takes to
# move (3 adverts and a track script's fall), a kubelet's Lease renewal (every 10 s) and the
# kubelet's third crash-loop back-off (40 s) for a container that exited (seen on CI under load:
# API-D01 refused, 15 s after VIP-D01's restore, on cp1's scheduler not running).
GUARD_GRACE_SECONDS = 60.0


class _Signals:
    """While a fault is in effect, SIGINT, SIGTERM and SIGHUP (a dropped SSH session to the
    bastion) all become KeyboardInterrupt, so the block is left and the fault restored.
    While injecting and while restoring, a signal is held until that is done: a second
    Ctrl-C never aborts a rollback, and an injection is never cut off halfway (the remote
    command of an SSH client killed mid-way runs on, and a `systemctl stop` landing after
    its own restore left keepalived stopped with the journal saying restored)."""

    def __init__(self) -> None:
        self.holding = False
        self.deferred: int | None = None
        self._old: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.holding:
            self.deferred = signum
            return
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    def release(self) -> None:
        """Stop holding; a signal that came meanwhile is raised now."""
        self.holding = False
        if self.deferred is not None:
            signum, self.deferred = self.deferred, None
            raise KeyboardInterrupt(f"signal {signal.Signals(signum).name} (held until the fault was injected)")

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._old = {s: signal.signal(s, self._handle) for s in SIGNALS}

    def uninstall(self) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)  # type: ignore[arg-type]
        self._old = {}
        if self.deferred is not None:
            signum, self.deferred = self.deferred, None
            raise KeyboardInterrupt(f"signal {signal.Signals(signum).name} (held until the fault was restored)")


class Fault(ABC):
    """Base: subclasses say what they break (describe, undo) and how (inject)."""

    def __init__(self, control: Cluster, host: str) -> None:
        self.control, self.host = control, host
        self._entry: Entry | None = None
        self.injected_at = 0.0   # time.monotonic() when the action was sent ...
        self.returned_at = 0.0   # ... and when it returned: the fault took effect in between
        self.restored_at = 0.0
        self.undone: object = None   # what the restore reported
        self.beside: Fault | None = None   # a fault of another failure domain held for its alert
        self._signals = _Signals()
        self._undo_once = threading.Lock()

    @abstractmethod
    def describe(self) -> str: ...

    @abstractmethod
    def undo(self) -> dict: ...

    @abstractmethod
    def inject(self) -> None: ...

    def cost_guard(self, health: list[Health]) -> None:
        """Refuse when this fault would cost what cannot be lost (subclasses say what)."""
        return   # most faults cost nothing that cannot be lost

    def took_effect(self) -> tuple[float, float] | None:
        """(time.monotonic() the fault took effect, ± seconds) as the host recorded it, when
        it can say; None: the check finds the first effect in what it observed."""
        return None

    def refuse(self, why: str) -> FaultRefused:
        return FaultRefused(f"refusing to {self.describe()}: {why}")

    def guard(self) -> None:
        """One fault at a time; nothing it would cost that cannot be lost; and no fault on a
        sick cluster, where it would measure nothing and might break it further (what is unsteady
        for a moment, e.g. a VIP mid-move, is waited out first)."""
        held = self.beside._entry.id if self.beside and self.beside._entry else None
        pending = [e for e in journal(self.control).pending() if e.undo["kind"] not in SETUP_UNDO and e.id != held]
        if pending:
            e = pending[0]
            who = "left by a run that is gone; `hakit repair` undoes it" \
                if e.owner.is_gone() or e.owner == Owner.me() else f"by {e.owner}, still running"
            raise self.refuse(f"{e.fault} is still in effect ({who}); one fault at a time")
        health = self.control.health()
        self.cost_guard(health)
        beside = self.beside.host if self.beside else None
        if self.control.unsteady(health, beside=beside):   # a transient, or a sick cluster?
            sick = self.control.unsteady_after(GUARD_GRACE_SECONDS, beside=beside)
            if sick:
                raise self.refuse(f"the cluster is not healthy: {said(sick)} (for {GUARD_GRACE_SECONDS:.0f} s)")
            self.cost_guard(self.control.health())   # judged on the state it injects into

    def __enter__(self) -> Fault:
        lock = run_lock(self.control)
        lock.__enter__()   # one disruptive run per cluster; re-entrant within this run
        try:
            self.guard()
            self._signals.install()
            # Held from before the journal line is written: a signal between the line and the
            # injection would leave the journal naming a fault nobody restores.
            self._signals.holding = True
            self._entry = journal(self.control).injecting(self.describe(), self.undo(), self.control.identity)
        except BaseException:
            self._signals.holding = False
            try:
                self._signals.uninstall()   # raises a signal held meanwhile: the lock is let go all the same
            finally:
                lock.__exit__(None, None, None)
            raise
        self.injected_at = time.monotonic()
        try:
            self.inject()
            self.returned_at = time.monotonic()
            self._signals.release()
        except BaseException:
            self._rollback()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._rollback()

    def restore(self) -> None:
        """Undo the fault now, once (a second call does nothing). Safe from another thread:
        the journal, the run lock and the signal handlers are left to `__exit__`, on the
        main thread (a held fault's undo runs from one the moment its alert is delivered)."""
        with self._undo_once:
            if not self.restored_at:
                self.undone = undo(self.control, self.undo())
                self.restored_at = time.monotonic()

    def _rollback(self) -> None:
        self._signals.holding = True
        try:
            self.restore()
            journal(self.control).restored(self._entry.id if self._entry else "")
        finally:
            self._signals.holding = False
            run_lock(self.control).__exit__(None, None, None)
            self._signals.uninstall()


def repair(control: Cluster) -> list[str]:
    """Undo every fault the journal says is still in effect and whose run is gone, on this
    cluster only; returns what was undone. Every entry is tried: one that fails does not
    keep the others in effect, and the failures are raised together at the end."""
    with run_lock(control):
        j, done, failed = journal(control), [], []
        for entry in j.pending():
            if not entry.owner.is_gone() and entry.owner != Owner.me():
                continue   # a live run's fault: it restores its own
            if entry.cluster.differs(control.identity):
                raise JournalError(f"fault journal {j.path}: '{entry.fault}' was injected on another cluster "
                                   f"({entry.cluster}); this is {control.identity}. Refusing to replay it here")
            try:
                undo(control, entry.undo)
            except Exception as e:  # noqa: BLE001 - the next entry must still be tried
                failed.append(f"{entry.fault}: {type(e).__name__}: {str(e)[:120]}")
                continue
            j.restored(entry.id)
            done.append(entry.fault)
    if failed:
        raise PreconditionError("could not undo: " + "; ".join(failed)
                                + (f" (undone: {', '.join(done)})" if done else ""))
    return done
