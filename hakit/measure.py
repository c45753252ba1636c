"""Watching a probe while a fault is in effect: a background thread samples it every
`interval` (100 ms by default, the resolution of every disruptive measurement) and
keeps each sample with its time, so a check asks afterwards when something first
happened and for how long.

    with Watch("API through the VIP", api_answers) as api:
        ...                                    # inject, wait, restore
    api.outage()                               # (first failure, last failure) or None
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from hakit import wait

POLL = 0.1


class Watch:
    def __init__(self, name: str, probe: Callable[[], Any], interval: float = POLL) -> None:
        self.name, self.probe, self.interval = name, probe, interval
        self.samples: list[tuple[float, Any]] = []   # (time.monotonic() the probe started, value)
        self._ends: list[float] = []                 # when each probe returned: a failure may be slow
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch {name}", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                value = self.probe()
            except Exception as e:  # noqa: BLE001 - a failing probe is a sample, not a crash
                value = e
            self._ends.append(time.monotonic())
            self.samples.append((started, value))
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def __enter__(self) -> Watch:
        self._thread.start()
        wait.until(lambda: self.samples, 30, f"a first sample of {self.name}", interval=0.02)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    @property
    def latest(self) -> Any:
        return self.samples[-1][1]

    def first(self, predicate: Callable[[Any], bool], after: float = 0.0) -> float | None:
        """The time of the first sample at or after `after` whose value satisfies predicate
        (a probe that failed observed nothing: predicate never sees its exception)."""
        return next((t for t, v in list(self.samples)
                     if t >= after and not isinstance(v, Exception) and predicate(v)), None)

    def wait(self, predicate: Callable[[Any], bool], after: float, timeout: float, what: str) -> float:
        """Block until a sample after `after` satisfies predicate; return its time."""
        return wait.until(lambda: self.first(predicate, after), timeout, what, interval=0.02)

    def outage(self, ok: Callable[[Any], bool] = bool, after: float = 0.0) -> tuple[float, float] | None:
        """(start of the first bad sample, end of the last) after `after`, or None when all were good."""
        bad = [i for i, (t, v) in enumerate(list(self.samples)) if t >= after and _bad(v, ok)]
        return (self.samples[bad[0]][0], self._ends[bad[-1]]) if bad else None

    def failures(self, ok: Callable[[Any], bool] = bool, after: float = 0.0) -> tuple[int, int]:
        """(bad samples, all samples) after `after`."""
        mine = [v for t, v in list(self.samples) if t >= after]
        return sum(_bad(v, ok) for v in mine), len(mine)


def _bad(value: Any, ok: Callable[[Any], bool]) -> bool:
    return isinstance(value, Exception) or not ok(value)
