"""Faults as context managers named by what they break; leaving the block is the
rollback, and it runs on success, failure, exception, Ctrl-C and SIGTERM.

    with StopComponent(lab, "cp3", "etcd"):
        ...   # measure while cp3's etcd is down

Before injecting, a fault passes the guard (the lab is healthy, nothing else is
broken, and this fault cannot cost quorum, the last apiserver or the VIP) and is
written to the journal; `repair()` undoes whatever a SIGKILL left behind.
"""

from __future__ import annotations

import signal
from abc import ABC, abstractmethod
from collections.abc import Callable
from types import FrameType, TracebackType

from hakit.errors import PreconditionError
from hakit.faults.journal import Journal
from hakit.lab import Lab


class FaultRefused(PreconditionError):
    """The guard said no; nothing was touched."""


def journal(lab: Lab) -> Journal:
    return Journal(lab.paths.root / "faults.jsonl")


# How to undo each kind of fault, from its journal record alone (a later process may do it).
UNDO: dict[str, Callable[[Lab, dict], object]] = {
    "start": lambda lab, u: lab.host(u["host"]).start(u["component"]),
    "link_up": lambda lab, u: lab.host(u["host"]).link_up(),
    "heal": lambda lab, u: lab.host(u["host"]).heal(),
}


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


class Fault(ABC):
    """Base: subclasses say what they break (describe, undo) and how (inject)."""

    def __init__(self, lab: Lab, host: str) -> None:
        self.lab, self.host = lab, host
        self._entry_id: str | None = None
        self._old_handler: object = None

    @abstractmethod
    def describe(self) -> str: ...

    @abstractmethod
    def undo(self) -> dict: ...

    @abstractmethod
    def inject(self) -> None: ...

    def cost_guard(self) -> None:
        """Refuse when this fault would cost what cannot be lost (subclasses say what)."""

    def guard(self) -> None:
        """One fault at a time; nothing it would cost that cannot be lost; and no fault on a
        sick cluster, where it would measure nothing and might break it further."""
        pending = journal(self.lab).pending()
        if pending:
            raise FaultRefused(f"refusing to {self.describe()}: {pending[0].fault} is still in effect "
                               "(one fault at a time; `hakit repair` undoes leftovers)")
        self.cost_guard()
        sick = [f"{s.host}/{s.component}" for s in self.lab.status() if not s.healthy]
        if sick:
            raise FaultRefused(f"refusing to {self.describe()}: the lab is not healthy ({', '.join(sick)})")

    def __enter__(self) -> Fault:
        self.guard()
        self._old_handler = signal.signal(signal.SIGTERM, _interrupt)
        self._entry_id = journal(self.lab).injecting(self.describe(), self.undo()).id
        try:
            self.inject()
        except BaseException:
            self._rollback()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._rollback()

    def _rollback(self) -> None:
        try:
            u = self.undo()
            UNDO[u["kind"]](self.lab, u)
            journal(self.lab).restored(self._entry_id or "")
        finally:
            signal.signal(signal.SIGTERM, self._old_handler)  # type: ignore[arg-type]


class StopComponent(Fault):
    def __init__(self, lab: Lab, host: str, component: str) -> None:
        super().__init__(lab, host)
        self.component = component

    def describe(self) -> str:
        return f"stop {self.component} on {self.host}"

    def undo(self) -> dict:
        return {"kind": "start", "host": self.host, "component": self.component}

    def inject(self) -> None:
        self.lab.host(self.host).stop(self.component)

    def cost_guard(self) -> None:
        if self.component == "etcd":
            members = [s for s in self.lab.status() if s.component == "etcd"]
            healthy = sum(s.healthy for s in members)
            if healthy - 1 < len(members) // 2 + 1:
                raise FaultRefused(f"refusing to {self.describe()}: {healthy} of {len(members)} etcd members "
                                   "are healthy; one fewer loses quorum")
        if self.component == "kube-apiserver":
            serving = [s.host for s in self.lab.status() if s.component == "kube-apiserver" and s.healthy]
            if serving == [self.host]:
                raise FaultRefused(f"refusing to {self.describe()}: it is the last serving apiserver")
        if self.component in ("keepalived", "haproxy"):
            _require_vip_standby(self)


class LinkDown(Fault):
    def describe(self) -> str:
        return f"take {self.host}'s link down"

    def undo(self) -> dict:
        return {"kind": "link_up", "host": self.host}

    def inject(self) -> None:
        self.lab.host(self.host).link_down()

    def cost_guard(self) -> None:
        _require_vip_standby(self)


class Partition(Fault):
    def describe(self) -> str:
        return f"partition {self.host} from its peers"

    def undo(self) -> dict:
        return {"kind": "heal", "host": self.host}

    def inject(self) -> None:
        self.lab.host(self.host).partition()

    def cost_guard(self) -> None:
        _require_vip_standby(self)


def _require_vip_standby(fault: Fault) -> None:
    """The VIP may only be put at risk when another host can take it."""
    standby = [s.host for s in fault.lab.status()
               if s.component == "keepalived" and s.healthy and s.host != fault.host]
    if not standby:
        raise FaultRefused(f"refusing to {fault.describe()}: no other host runs keepalived to take the VIP")


def repair(lab: Lab) -> list[str]:
    """Undo every fault the journal says is still in effect; returns what was undone."""
    j, done = journal(lab), []
    for entry in j.pending():
        UNDO[entry.undo["kind"]](lab, entry.undo)
        j.restored(entry.id)
        done.append(entry.fault)
    return done
