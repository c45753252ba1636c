"""Scenarios: what a disruptive check breaks, what its observers watch, and the timeline.

A scenario is the method of chaostoolkit's experiment, kept apart from the verdict: it
picks its victim, opens its observers (`hakit.measure.Watch` and friends), injects its
fault through the check's `inject` (the guard, journal and rollback are the fault's own),
records each milestone on the check's Evidence timeline, and returns what it measured.
The check keeps the property: its SLO, the evidence that judges, the assertion.

    move = api.failover(inventory, control, inject, evidence, stop_keepalived, "...")
    assert len(move.final) == 1 and not judged(evidence, api.client_outages(...), ...)
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from hakit.faults.base import Fault
from hakit.model import Evidence

# `with inject(fault) as fault:` enters the fault under the run's guard and marks time zero.
Inject = Callable[[Fault], AbstractContextManager[Fault]]


class Alerts(Protocol):
    """Following an HA alert inside a scenario's own fault, for MON-D01 to judge (the pytest
    side's `alerts` fixture): open before the fault, `hold` once the figure is measured,
    `done` after the restore."""

    def following(self, alert: str, host: str) -> AbstractContextManager[Any]: ...

    def hold(self, follow: Any, fault: Fault, t0: float) -> None: ...

    def done(self, follow: Any, fault: Fault, evidence: Evidence) -> None: ...
