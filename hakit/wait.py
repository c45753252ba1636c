"""Polling with a deadline: the one way hakit waits for something to become true."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from hakit.errors import HakitError

T = TypeVar("T")


class WaitTimeout(HakitError):
    """What was awaited did not happen in time; the message says what and why."""


def until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.3,
          why: Callable[[], str] | None = None) -> T:
    """Poll until predicate() is truthy and return its value; exceptions it raises propagate."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = why() if why else ""
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what}" + (f": {detail}" if detail else ""))
        time.sleep(interval)
