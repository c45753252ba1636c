"""Watching something while a fault is in effect, as a timeline of timestamped values a
check asks afterwards when something first happened and for how long.

`Watch` samples a probe every `interval` (100 ms by default): its resolution is the
interval. `hakit.cluster.stream.AddressStream` fills the same timeline from events a
host prints as they happen: its resolution is the channel's latency.

    with Watch("API through the VIP", api_answers) as api:
        ...                                    # inject, wait, restore
    api.outage()                               # (first failure, last failure) or None
"""

from __future__ import annotations

import bisect
import statistics
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from hakit import wait

POLL = 0.1


class Timeline:
    """Timestamped values of one thing, filled by a background thread; `resolution` says
    how late a change may be seen (the figures derived from it carry it as their ±)."""

    def __init__(self, name: str, resolution: float) -> None:
        self.name, self.resolution = name, resolution
        self.samples: list[tuple[float, Any]] = []   # (time.monotonic() the value was seen, value)
        self._ends: list[float] = []                 # when each sample's probe returned: a failure may be slow
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch {name}", daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def seen(self, value: Any, at: float, ended: float | None = None) -> None:
        """Record a value seen at `at`, in time order whatever order the samples finish in."""
        with self._lock:
            i = bisect.bisect(self.samples, at, key=lambda s: s[0])
            self._ends.insert(i, at if ended is None else ended)
            self.samples.insert(i, (at, value))

    def __enter__(self) -> Timeline:
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

    def first_outage(self, ok: Callable[[Any], bool] = bool, after: float = 0.0, before: float = float("inf"),
                     gap: float = 1.5) -> tuple[float, float] | None:
        """What new clients saw of the first outage that began in [after, before]: (its first
        failed sample, the first good one after its last failure). Failures less than `gap`
        apart are one outage: a request amid failing ones that got through (a SYN retried just
        as the VIP moved) does not end it, and a later outage (the VIP moving back) is not part
        of it. A request in flight when the fault hit fails too: the start may be early by as
        long as a request takes, which the caller's ± says. None when nothing failed or it has
        not ended."""
        bad = [t for t, v in list(self.samples) if t >= after and _bad(v, ok)]
        if not bad or bad[0] > before:
            return None
        last = bad[0]
        for t in bad[1:]:
            if t - last > gap:
                break
            last = t
        end = self.first(ok, last)
        return (bad[0], end) if end is not None else None

    def first_failure(self, ok: Callable[[Any], bool] = bool, after: float = 0.0) -> tuple[float, float] | None:
        """(start, end) of the first sample after `after` that failed: the failure happened in
        between (an overlapping probe's request may have started well before it)."""
        with self._lock:
            found = next((i for i, (t, v) in enumerate(self.samples) if t >= after and _bad(v, ok)), None)
            return None if found is None else (self.samples[found][0], self._ends[found])

    def gap_before(self, at: float) -> float:
        """How long before `at` the previous sample was taken: a change seen at `at` happened
        within that (a probe that hangs until its timeout makes it longer than the interval)."""
        before = [t for t, _ in list(self.samples) if t < at]
        return at - before[-1] if before else self.resolution

    def latency(self, around: float, within: float = 1.0) -> float:
        """How long a good sample typically took (the median) within `within` s of `around`:
        how blurred a boundary there is (a client's request that takes 0.3 s cannot date an
        outage's end to 0.1 s)."""
        with self._lock:
            took = [end - t for (t, v), end in zip(self.samples, self._ends, strict=False)
                    if abs(t - around) <= within and not isinstance(v, Exception) and v]
        return statistics.median(took) if took else 0.0

    def failures(self, ok: Callable[[Any], bool] = bool, after: float = 0.0) -> tuple[int, int]:
        """(bad samples, all samples) after `after`."""
        mine = [v for t, v in list(self.samples) if t >= after]
        return sum(_bad(v, ok) for v in mine), len(mine)


class Watch(Timeline):
    """A probe sampled every `interval` (100 ms by default): its resolution is the interval.

    With overlap=True a sample starts every interval even while earlier ones still wait for
    their timeout, as new clients keep arriving during an outage: the outage's end is then
    seen within one interval, not one timeout."""

    def __init__(self, name: str, probe: Callable[[], Any], interval: float = POLL, overlap: bool = False) -> None:
        super().__init__(name, resolution=interval)
        self.probe, self.interval, self.overlap = probe, interval, overlap
        self._inflight: list[threading.Thread] = []

    def _sample(self, started: float) -> None:
        try:
            value = self.probe()
        except Exception as e:  # noqa: BLE001 - a failing probe is a sample, not a crash
            value = e
        self.seen(value, started, time.monotonic())

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            if self.overlap:
                self._inflight = [t for t in self._inflight if t.is_alive()]
                t = threading.Thread(target=self._sample, args=(started,), daemon=True)
                t.start()
                self._inflight.append(t)
            else:
                self._sample(started)
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        super().__exit__(exc_type, exc, tb)
        for t in self._inflight:   # every sample started is in the timeline before it is read
            t.join(timeout=30)


def time_zero(sent: float, returned: float, recorded: tuple[float, float] | None,
              effects: list[tuple[float | None, float, str]]) -> tuple[float, float, str]:
    """When a fault took effect: (time.monotonic(), ± seconds, how it is known). The host's
    own record when there is one; else the first effect observed after the action was sent
    (a value seen at t changed within the timeline's resolution before t); else somewhere
    between sending the action and its return."""
    if recorded:
        return recorded[0], recorded[1], "the host's clock when it acted, offset measured"
    seen = sorted((t, res, what) for t, res, what in effects if t is not None and t >= sent)
    if not seen:
        return (sent + returned) / 2, (returned - sent) / 2, "between sending the action and its return"
    t, res, what = seen[0]
    lo = max(sent, t - res)
    return (lo + t) / 2, (t - lo) / 2, f"the first effect seen: {what}"


def _bad(value: Any, ok: Callable[[Any], bool]) -> bool:
    return isinstance(value, Exception) or not ok(value)
