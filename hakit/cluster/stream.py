"""Who holds an address, as the host's kernel says it changes: one long-lived SSH channel
per host running `ip -ts monitor address`, instead of one SSH command per 100 ms sample.

A sampled probe costs a round trip per sample and sees a change up to one interval
late; on a loaded machine the round trip is longer than the interval. Here each event
carries the host's own timestamp, taken as it happened, and is placed on this machine's
clock NTP-style: the channel's offset is the smallest (arrival - host stamp) seen, so a
common delivery delay does not shift one event against another from a channel like it.
The stream's resolution is how much later than that fastest line a line typically
arrives (the channel's jitter), floored at 1 ms.

While the channel is down (the host's own link is down), the value is None: unknown,
not "does not hold". The channel reopens by itself and starts from the current state.
"""

from __future__ import annotations

import ipaddress
import re
import statistics
import subprocess
import time
from datetime import datetime, timezone

from hakit.cluster import ssh
from hakit.inventory import Inventory
from hakit.measure import Timeline

READY = "hakit-stream-ready"
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
    at = datetime.strptime(stamp.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc).timestamp()
    return at, not line[stamp.end():].startswith("Deleted")


class AddressStream(Timeline):
    """Whether host holds address, from the host's own address events (True / False / None)."""

    def __init__(self, inv: Inventory, host: str, address: str, vip: str) -> None:
        if inv.ssh is None:
            raise ValueError("an address stream needs access.ssh")   # callers fall back to a Watch
        self.vip = str(ipaddress.ip_address(vip))
        self.argv = ssh.ssh_argv(inv.ssh, address, f"ip -o -4 addr show; echo {READY} $(date +%s.%N); "
                                                   "TZ=UTC exec ip -ts -o -4 monitor address")
        super().__init__(f"{vip} on {host}", resolution=0.001)
        self._proc: subprocess.Popen[str] | None = None
        self._delays: list[float] = []   # arrival - host stamp, each line: their minimum is the offset

    def _local(self, host_time: float, arrived: float) -> float:
        """A host timestamp as this machine's time.monotonic()."""
        self._delays.append(arrived - host_time)
        offset = min(self._delays)
        self.resolution = max(0.001, statistics.median(self._delays) - offset)
        return host_time + offset - (time.time() - time.monotonic())

    def _run(self) -> None:
        while not self._stop.is_set():
            self._proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, text=True, bufsize=1)
            assert self._proc.stdout is not None
            shown: list[str] | None = []     # the address list before the events start
            for line in self._proc.stdout:
                arrived = time.time()
                if shown is None:
                    if (event := change(line, self.vip)) is not None:
                        self.seen(event[1], self._local(event[0], arrived))
                elif line.startswith(READY):
                    self.seen(holds(shown, self.vip), self._local(float(line.split()[1]), arrived))
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
