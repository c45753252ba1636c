"""One alert followed from a fault to the pager and back: pending and firing in
Prometheus, active (or suppressed) in Alertmanager, delivered to the receiver, then
resolved in Prometheus and at the receiver, each stage sampled every 100 ms.

A trail is opened before the fault (so pending is not missed), followed while the
fault holds, and resolved after the restore. MON-D01 follows one with a fault of its
own; a disruptive check that already holds the same fault (an etcd member stopped,
a worker lost, an apiserver stopped) follows it in the same window instead, and
MON-D01 then judges what was recorded: one fault, every consequence.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import pytest

from hakit import wait
from hakit.measure import Watch
from hakit.prometheus import Alertmanager, Prometheus, Receiver

# The labels that tie each followed alert to its fault: (the fault's host, {component: job name
# in this Prometheus}) -> labels. Job names differ (the lab's "etcd", kube-prometheus-stack's
# "kube-etcd"): see hakit.prometheus.ha_jobs.
LABELS: dict[str, Callable[[str, dict[str, str]], dict[str, str]]] = {
    "etcdMembersDown": lambda host, jobs: {"job": jobs.get("etcd", "etcd")},
    "KubeNodeNotReady": lambda host, jobs: {"node": host},
    "TargetDown": lambda host, jobs: {"job": jobs.get("kube-apiserver", "apiserver")},
}


def matches(alert: dict[str, Any], name: str, labels: dict[str, str]) -> bool:
    return alert["labels"].get("alertname") == name and all(alert["labels"].get(k) == v for k, v in labels.items())


@dataclass
class Trail:
    """Where one alert got to after a fault; times are time.monotonic()."""

    alert: str
    labels: dict[str, str]
    fault: str = ""                   # the fault it followed, in words
    t0: float = 0.0                   # when that fault took effect
    restored: float = 0.0             # when it was undone
    stages: list[tuple[str, float]] = field(default_factory=list)   # (stage, when), in order
    missed: str | None = None         # the first stage not reached within the SLO
    am_state: str | None = None       # "active", or "suppressed" under a silence
    resolved: float | None = None     # resolved in Prometheus
    resolved_in_am: float | None = None   # no longer active in Alertmanager
    resolved_delivered: float | None = None
    host_check: str = ""              # the disruptive check whose fault it was, when not MON-D01's own

    def at(self, stage: str) -> float | None:
        return next((t for s, t in self.stages if s == stage), None)


class Follow:
    """The watches of one alert's trail: open before the fault, `follow` while it holds,
    `resolve` after the restore."""

    def __init__(self, prometheus: Prometheus, alertmanager: Alertmanager, receiver: Receiver | None,
                 alert: str, labels: dict[str, str]) -> None:
        self.prometheus, self.alertmanager, self.receiver = prometheus, alertmanager, receiver
        self.trail = Trail(alert, labels)
        self.since = time.time()
        self._stack = ExitStack()

    def in_prometheus(self) -> str | None:
        states = [a["state"] for a in self.prometheus.alerts() if matches(a, self.trail.alert, self.trail.labels)]
        return "firing" if "firing" in states else "pending" if states else None

    def in_alertmanager(self) -> str | None:
        found = [a["status"]["state"] for a in self.alertmanager.alerts(filter=f'alertname="{self.trail.alert}"')
                 if matches(a, self.trail.alert, self.trail.labels)]
        return found[0] if found else None

    def paged(self) -> set[str]:
        """Statuses (firing, resolved) the receiver got for this alert since the trail began.
        The alert's own status: a group's notification is "firing" while any of its alerts
        fires, and carries this one as "resolved" inside it."""
        if self.receiver is None:
            return set()
        return {a["status"] for at, n in self.receiver.notifications() if at >= self.since
                for a in n.get("alerts", []) if matches(a, self.trail.alert, self.trail.labels)}

    def clear(self) -> bool:
        """Not already on its way: one still firing from an earlier fault would make every stage
        look instant."""
        return self.in_prometheus() is None and self.in_alertmanager() is None

    def __enter__(self) -> Follow:
        self.prom = self._stack.enter_context(Watch("alert in Prometheus", self.in_prometheus))
        self.am = self._stack.enter_context(Watch("alert in Alertmanager", self.in_alertmanager))
        self.pager = self._stack.enter_context(Watch("receiver", self.paged))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop the watches (a trail left open by one check is closed by MON-D01)."""
        self._stack.close()

    def follow(self, fault: str, t0: float, slo: float, delivered: bool) -> Trail:
        """Wait for each stage in turn until t0 + slo; stop at the first one not reached."""
        self.trail.fault, self.trail.t0 = fault, t0
        a = self.trail.alert
        plan = [(self.prom, lambda v: v in ("pending", "firing"), f"{a} pending in Prometheus"),
                (self.prom, lambda v: v == "firing", f"{a} firing in Prometheus"),
                (self.am, lambda v: v in ("active", "suppressed"), f"{a} in Alertmanager")]
        if delivered:
            plan.append((self.pager, lambda v: "firing" in v, f"{a} delivered to the receiver"))
        for watch, reached, what in plan:
            try:
                at = watch.wait(reached, t0, max(slo - (time.monotonic() - t0), 1.0), what)
            except wait.WaitTimeout:
                self.trail.missed = what
                return self.trail
            self.trail.stages.append((what, at))
            if watch is self.am:
                self.trail.am_state = self.am.latest
        return self.trail

    def resolve(self, restored: float, slo: float, delivered: bool) -> Trail:
        """After the restore: resolved in Prometheus, then in Alertmanager, then the resolved
        notification at the receiver; each None when not within the SLO of the restore. It may
        be called long after the restore (MON-D01 resolves the trails other checks left open
        while the suite went on): the watches kept sampling, and what came later is too late."""
        self.trail.restored = restored
        deadline = restored + slo
        stages = [("resolved", self.prom, lambda v: v is None, "to resolve in Prometheus"),
                  ("resolved_in_am", self.am, lambda v: v is None, "to resolve in Alertmanager")]
        if delivered:
            stages.append(("resolved_delivered", self.pager, lambda v: "resolved" in v, "'s resolved notification"))
        for attr, watch, reached, what in stages:
            try:
                at = watch.wait(reached, restored, max(deadline - time.monotonic(), 0.0), f"{self.trail.alert} {what}")
            except wait.WaitTimeout:
                break
            if at > deadline:
                break
            setattr(self.trail, attr, at)
        return self.trail


# In a pytest run: MON-D01's alerts selected (set by the plugin at collection), and the follows
# other disruptive checks left open for them after holding the same fault: MON-D01 resolves and
# closes each, so the suite need not wait out the resolution inside the check that held the fault.
FOLLOWED = pytest.StashKey[set[str]]()
HELD = pytest.StashKey[dict[str, Follow]]()
