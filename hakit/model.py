"""The result model: what a check is, what it measured, and how it ended.

One model feeds every output (terminal, JSON, HTML, JUnit via pytest), like
kube-bench's: a check is a record that carries its own remediation.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import pytest

F = TypeVar("F", bound=Callable[..., Any])

PROPERTIES = {
    "api-endpoint": "API endpoint (VIP, load balancer, apiservers)",
    "etcd": "etcd quorum and health",
    "control-plane": "Control-plane redundancy and leader election",
    "workloads": "Nodes and workload placement",
    "monitoring": "Monitoring and alerting",
    "hosts": "Control-plane hosts",
}


class Severity(str, enum.Enum):
    CRITICAL = "critical"   # failing means the property does not hold
    WARNING = "warning"     # failing means the property is degraded


class Outcome(str, enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"        # a warning-severity check that failed
    SKIP = "skip"
    ERROR = "error"      # the check itself could not run (unreachable, crashed)


class Verdict(str, enum.Enum):
    PASS = "pass"               # every check of the property ran and passed
    DEGRADED = "degraded"
    FAIL = "fail"
    UNVERIFIED = "unverified"   # a check was skipped or could not run: not looked at is not a pass


@dataclass(frozen=True)
class Check:
    """The declarative half of a check; the pytest function is the other half."""

    id: str
    title: str
    property: str
    severity: Severity
    remediation: str
    runbook: str | None = None
    disruptive: str | None = None   # the inventory's disruptive.allowed name that permits it

    def __post_init__(self) -> None:
        if self.property not in PROPERTIES:
            raise ValueError(f"check {self.id}: unknown property {self.property!r}")


def check(id: str, title: str, *, property: str, remediation: str, severity: str = "critical",
          runbook: str | None = None, disruptive: str | None = None) -> Callable[[F], F]:
    """Declare a pytest function as an HA check:

    >>> @check("ETCD-003", "etcd has exactly one leader", property="etcd",
    ...        remediation="...", runbook="etcd-replace-member")
    ... def test_one_leader(etcd_statuses, evidence): ...

    A disruptive check names what it breaks (one of inventory.DISRUPTIVE_CHECKS); it
    runs only under --disruptive and only when the inventory allows that name.
    """
    record = Check(id, title, property, Severity(severity), " ".join(remediation.split()), runbook, disruptive)

    def mark(fn: F) -> F:
        fn = pytest.mark.hakit_check(record)(fn)
        return pytest.mark.disruptive(fn) if disruptive else fn
    return mark


@dataclass
class Measurement:
    name: str
    value: Any
    expected: str | None = None   # the SLO or threshold it is held against, in words
    ok: bool | None = None
    seconds: float | None = None  # a measured duration, as a number: audit history draws its trend


@dataclass
class Event:
    at: float       # seconds after the fault was injected (negative: before it)
    what: str
    ok: bool | None = None   # a milestone reached (True) or the harm seen (False); None: neutral


@dataclass
class Evidence:
    """What a check measured; shown beside its verdict in every report. A disruptive
    check also keeps a timeline: the fault at t0, then detection and each recovery."""

    measurements: list[Measurement] = field(default_factory=list)
    timeline: list[Event] = field(default_factory=list)
    t0: float | None = None   # time.monotonic() of the fault
    deadline: tuple[float, str] | None = None   # (seconds after the fault, "SLO name"): drawn on the chart
    components: list[tuple[str, str]] = field(default_factory=list)   # (host, component) a failure is about

    def about(self, host: str, component: str) -> None:
        """Say which component a failure is about ("" for the cluster as a whole), so findings
        can be joined into incidents (hakit.incidents)."""
        if (host, component) not in self.components:
            self.components.append((host, component))

    def record(self, name: str, value: Any, expected: str | None = None, ok: bool | None = None,
               seconds: float | None = None) -> Any:
        self.measurements.append(Measurement(name, value, expected, ok, None if seconds is None else round(seconds, 3)))
        return value

    def within(self, name: str, seconds: float, slo: float, slo_name: str, detail: str = "") -> bool:
        """Record a measured duration held against its SLO (for the report, the history and
        the metrics); returns whether it was met. The caller asserts, with its own words."""
        ok = seconds <= slo
        self.record(name, f"{seconds:.2f} s" + (f" ({detail})" if detail else ""), f"≤ {slo:g} s (slo.{slo_name})",
                    ok, seconds=seconds)
        return ok

    def fault(self, what: str, at: float) -> None:
        """The fault happened at `at` (time.monotonic()): the timeline's zero."""
        self.t0 = at
        self.timeline.append(Event(0.0, what, False))

    def took_effect(self, at: float, pm: float, how: str) -> None:
        """Time zero moves from when the fault's action was sent to when it took effect (`at`,
        ± pm, found by `how`); the action's sending stays on the timeline, before zero."""
        if self.t0 is None:
            return
        shift = at - self.t0
        sent, *rest = self.timeline
        self.timeline = [Event(round(-shift, 3), f"{sent.what}: sent", None),
                         Event(0.0, f"took effect (± {pm * 1000:.0f} ms: {how})", False),
                         *(Event(round(e.at - shift, 3), e.what, e.ok) for e in rest)]
        self.t0 = at
        self.record("time zero", f"{shift * 1000:+.0f} ms after the action was sent, ± {pm * 1000:.0f} ms", how)

    def event(self, what: str, at: float, ok: bool | None = None) -> float:
        """A milestone at monotonic time `at`; returns its seconds after the fault."""
        since = round(at - (self.t0 if self.t0 is not None else at), 3)
        self.timeline.append(Event(since, what, ok))
        return since


@dataclass
class Result:
    check: Check
    outcome: Outcome
    message: str
    duration: float
    evidence: list[Measurement]
    nodeid: str
    timeline: list[Event] = field(default_factory=list)
    deadline: tuple[float, str] | None = None
    about: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["check"]["severity"] = self.check.severity.value
        d["outcome"] = self.outcome.value
        return d


def verdict(results: Iterable[Result], accepted_skips: Collection[str] = ()) -> Verdict:
    """FAIL when a check failed; UNVERIFIED when one was skipped (unless the user accepted
    that check's skip) or could not run; DEGRADED when a warning failed; PASS only when
    everything that should have run passed."""
    outcomes = {r.outcome for r in results if not (r.outcome is Outcome.SKIP and r.check.id in accepted_skips)}
    if Outcome.FAIL in outcomes:
        return Verdict.FAIL
    if outcomes & {Outcome.ERROR, Outcome.SKIP} or not outcomes:
        return Verdict.UNVERIFIED
    if Outcome.WARN in outcomes:
        return Verdict.DEGRADED
    return Verdict.PASS


def verdicts(results: list[Result], accepted_skips: Collection[str] = ()) -> dict[str, Verdict]:
    return {prop: verdict((r for r in results if r.check.property == prop), accepted_skips)
            for prop in PROPERTIES if any(r.check.property == prop for r in results)}
