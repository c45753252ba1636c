"""Who holds an address, as the host's kernel says it changes: one long-lived SSH channel
per host running `ip monitor address`, instead of one SSH command per 100 ms sample.

A sampled probe costs a round trip per sample and sees a change up to one interval
late; on a loaded machine the round trip is longer than the interval. The kernel's
address events arrive as they happen, stamped with this machine's receive time: a
change is seen one channel latency late (measured when the channel opens, and kept
as the stream's resolution).

While the channel is down (the host's own link is down), the value is None: unknown,
not "does not hold". The channel reopens by itself and starts from the current state.
"""

from __future__ import annotations

import ipaddress
import subprocess
import time

from hakit.cluster import ssh
from hakit.inventory import Inventory
from hakit.measure import Timeline

READY = "hakit-stream-ready"


def holds(lines: list[str], address: str) -> bool:
    """Whether `ip -o -4 addr show` lines put address on an interface."""
    return any(f" {address}/" in line for line in lines)


def change(line: str, address: str) -> bool | None:
    """What one `ip -o -4 monitor address` line says of address: added, deleted, or nothing."""
    if f" {address}/" not in line:
        return None
    return not line.startswith("Deleted")


class AddressStream(Timeline):
    """Whether host holds address, from the host's own address events (True / False / None)."""

    def __init__(self, inv: Inventory, host: str, address: str, vip: str) -> None:
        if inv.ssh is None:
            raise ValueError("an address stream needs access.ssh")   # callers fall back to a Watch
        self.vip = str(ipaddress.ip_address(vip))
        self.argv = ssh.ssh_argv(inv.ssh, address, f"ip -o -4 addr show; echo {READY}; exec ip -o -4 monitor address")
        super().__init__(f"{vip} on {host}", resolution=1.0)   # until the channel has measured it
        self._proc: subprocess.Popen[str] | None = None

    def _run(self) -> None:
        first = True
        while not self._stop.is_set():
            opened = time.monotonic()
            self._proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, text=True, bufsize=1)
            assert self._proc.stdout is not None
            shown: list[str] | None = []     # the address list before the events start
            for line in self._proc.stdout:
                now = time.monotonic()
                if shown is None:
                    if (value := change(line, self.vip)) is not None:
                        self.seen(value, now)
                elif line.strip() == READY:
                    if first:   # an event reaches us at most half a round trip late: bound it by that
                        self.resolution, first = max(0.001, (now - opened) / 2), False
                    self.seen(holds(shown, self.vip), now)
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
