"""Who holds an address, as the host's kernel says it changes: one long-lived SSH channel
per host running `ip -ts monitor address`, instead of one SSH command per 100 ms sample.

A sampled probe costs a round trip per sample and sees a change up to one interval
late; on a loaded machine the round trip is longer than the interval. Here each event
carries the host's own timestamp, taken as it happened, and is placed on this machine's
clock by the host's clock offset (measured when the channel opens, by `clock`): the
stream's resolution is that offset's uncertainty plus how late `ip` may stamp an event,
not the channel's delivery delay.

While the channel is down (the host's own link is down), the value is None: unknown,
not "does not hold". The channel reopens by itself and starts from the current state.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime

from hakit.cluster import ssh
from hakit.errors import HakitError
from hakit.inventory import Inventory
from hakit.measure import Timeline

READY = "hakit-stream-ready"
# `ip` stamps an event when it reads it from netlink, not when the kernel made it: on a
# busy host, late by up to 0.05 s (bench/accuracy.py's observer, which reads netlink in
# each namespace itself, on the 2-core lab under its own load). Part of every event's ±.
STAMP_LATENESS = 0.05
STAMP = re.compile(r"\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)\] ")


def holds(lines: list[str], address: str) -> bool:
    """Whether `ip -o -4 addr show` lines put address on an interface."""
    return any(f" {address}/" in line for line in lines)


def change(line: str, address: str) -> tuple[float, bool] | None:
    """What one `TZ=UTC ip -ts -o -4 monitor address` line says of address: (the host's time,
    added or deleted), or None when it is about something else."""
    stamp = STAMP.match(line)
    if stamp is None or f" {address}/" not in line:
        return None
    at = datetime.strptime(stamp.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC).timestamp()
    return at, not line[stamp.end():].startswith("Deleted")


class AddressStream(Timeline):
    """Whether host holds address, from the host's own address events (True / False / None)."""

    def __init__(self, inv: Inventory, host: str, address: str, vip: str,
                 clock: Callable[[], tuple[float, float]]) -> None:
        """`clock`: the host's clock minus this machine's, and its ± (Cluster.clock_offset)."""
        if inv.ssh is None:
            raise ValueError("an address stream needs access.ssh")   # callers fall back to a Watch
        self.vip, self.clock = str(ipaddress.ip_address(vip)), clock
        self.argv = ssh.ssh_argv(inv.ssh, address, f"ip -o -4 addr show; echo {READY} $(date +%s.%N); "
                                                   "TZ=UTC exec ip -ts -o -4 monitor address")
        super().__init__(f"{vip} on {host}", resolution=1.0)   # until the offset is measured
        self._proc: subprocess.Popen[str] | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                offset, pm = self.clock()
                self.resolution = pm + STAMP_LATENESS
            except HakitError:   # the host is cut off: unknown until it is back
                self.seen(None, time.monotonic())
                self._stop.wait(0.5)
                continue
            offset += time.time() - time.monotonic()   # host clock -> this machine's time.monotonic()
            self._proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, text=True, bufsize=1)
            assert self._proc.stdout is not None
            shown: list[str] | None = []     # the address list before the events start
            for line in self._proc.stdout:
                if shown is None:
                    if (event := change(line, self.vip)) is not None:
                        self.seen(event[1], event[0] - offset)
                elif line.startswith(READY):
                    self.seen(holds(shown, self.vip), float(line.split()[1]) - offset)
                    shown = None
                else:
                    shown.append(line)
            self._proc.wait()
            if not self._stop.is_set():
                self.seen(None, time.monotonic())   # the channel is gone: unknown until it is back
                self._stop.wait(0.5)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
        self._thread.join(timeout=30)
