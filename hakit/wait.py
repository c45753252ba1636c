"""Polling with a deadline: the one way hakit waits for something to become true."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from hakit.errors import HakitError

T = TypeVar("T")
# Told (what, seconds waited so far, timeout) on each poll that found nothing yet: the
# console's progress line during a long wait (hakit.fixtures.console). None: nobody listens.
watcher: Callable[[str, float, float], None] | None = None


class WaitTimeout(HakitError):
    """What was awaited did not happen in time; the message says what and why."""


def holds(predicate: Callable[[], object], seconds: float, interval: float = 0.5) -> bool:
    """Whether predicate() stays truthy for `seconds` (checked every `interval`): False at its
    first falsy answer. A state seen once may be about to change (a keepalived just started is
    a BACKUP until it misses three adverts); one that holds is the state."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not predicate():
            return False
        time.sleep(interval)
    return True


def until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.3,
          why: Callable[[], str] | None = None) -> T:
    """Poll until predicate() is truthy and return its value; exceptions it raises propagate."""
    began = time.monotonic()
    deadline = began + timeout
    while True:
        value = predicate()
        if value:
            return value
        if watcher is not None:
            watcher(what, time.monotonic() - began, timeout)
        if time.monotonic() >= deadline:
            detail = why() if why else ""
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what}" + (f": {detail}" if detail else ""))
        time.sleep(interval)
