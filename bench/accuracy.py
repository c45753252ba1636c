#!/usr/bin/env python3
"""Benchmark: do hakit's failover figures agree with an independent observer?

Runs VIP-D01 (keepalived stopped on the holder) and VIP-D03 (the holder's link down)
N times each on the netns lab, while this script watches the same events its own way:
no SSH, no hakit code in the path. It reads each host's addresses and link state
straight from its network namespace (`ip -n NS`) every 10 ms, and a client of its own
asks /readyz through the VIP every 20 ms. Per run it prints hakit's figure beside the
observer's and their difference; then the mean and the largest difference, which is
the accuracy to quote (with the observer's own resolution).

    sudo .venv/bin/python bench/accuracy.py [--runs 5]

Uses the lab at $HAKIT_LAB_DIR (`hakit lab up` first).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
import urllib3

from hakit.inventory import load
from hakit.lab import Lab
from hakit.lab.paths import default_root

urllib3.disable_warnings()
HOST_POLL, CLIENT_POLL = 0.01, 0.02


class Observer:
    """Samples (time.monotonic(), VIP holders, links down, API answered) on its own threads."""

    def __init__(self, netns: dict[str, str], vip: str, url: str) -> None:
        self.netns, self.vip, self.url = netns, vip, url
        self.hosts: list[tuple[float, frozenset[str], frozenset[str]]] = []
        self.api: list[tuple[float, bool]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._watch_hosts, daemon=True),
                         threading.Thread(target=self._watch_api, daemon=True)]

    def _watch_hosts(self) -> None:
        while not self._stop.is_set():
            t = time.monotonic()
            holders, down = set(), set()
            for name, ns in self.netns.items():
                out = subprocess.run(["ip", "-n", ns, "-o", "addr", "show", "dev", "eth0"],
                                     capture_output=True, text=True).stdout
                if f" {self.vip}/" in out:
                    holders.add(name)
                link = subprocess.run(["ip", "-n", ns, "-o", "link", "show", "eth0"],
                                      capture_output=True, text=True).stdout
                if "state DOWN" in link or ",UP" not in link:
                    down.add(name)
            self.hosts.append((t, frozenset(holders), frozenset(down)))
            self._stop.wait(max(0.0, HOST_POLL - (time.monotonic() - t)))

    def _ask(self, t: float) -> None:
        try:
            ok = requests.get(self.url, verify=False, timeout=1).text == "ok"
        except requests.RequestException:
            ok = False
        self.api.append((t, ok))

    def _watch_api(self) -> None:
        """A new client every 20 ms, each on a new connection and its own thread, whether or not
        the earlier ones still wait: the outage's end is seen within 20 ms, not one timeout."""
        while not self._stop.is_set():
            t = time.monotonic()
            threading.Thread(target=self._ask, args=(t,), daemon=True).start()
            self._stop.wait(max(0.0, CLIENT_POLL - (time.monotonic() - t)))

    def __enter__(self) -> Observer:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()
        time.sleep(1.5)   # the last clients' answers or timeouts
        self.api.sort()

    def figures(self, old: str) -> dict[str, float]:
        """The fault's effect (old dropped the VIP or its link went down), the VIP's move to
        another host after it, and the first client outage, in seconds."""
        effect = next(t for t, holders, down in self.hosts if old not in holders or old in down)
        moved = next(t for t, holders, _ in self.hosts if t >= effect and holders - {old})
        bad = next(t for t, ok in self.api if not ok and t >= effect - 1)
        good = next(t for t, ok in self.api if ok and t > bad)
        return {"VIP move": moved - effect, "client outage during the fault": good - bad}

    def period(self) -> float:
        """The host sampler's achieved period: the observer's own resolution."""
        times = [t for t, _, _ in self.hosts]
        return (times[-1] - times[0]) / max(1, len(times) - 1)


def hakit_figures(results: Path, hosts: list[str]) -> tuple[str, str, dict[str, float]]:
    """(outcome, the host hakit broke, as its timeline's first event names it, {figure: seconds})."""
    r = json.loads(results.read_text())["results"][0]
    got = {m["name"]: m["seconds"] for m in r["evidence"] if m.get("seconds") is not None}
    fault = r["timeline"][0]["what"] if r.get("timeline") else ""
    return r["outcome"], next((h for h in hosts if re.search(rf"\b{h}\b", fault)), ""), got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    inventory = default_root() / "inventory.yaml"
    inv = load(inventory)
    netns = {h.name: h.netns for h in Lab.load().spec.control_plane_hosts}
    diffs: dict[str, list[float]] = {}
    periods: list[float] = []
    print(f"{'check':8} {'run':>3} {'figure':32} {'hakit':>8} {'observer':>9} {'diff':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for check in ("VIP-D01", "VIP-D03"):
            for run in range(args.runs):
                with Observer(netns, inv.vip, inv.vip_url + "/readyz") as seen:
                    done = subprocess.run([sys.executable, "-m", "hakit.cli", "check", "--disruptive", "--check", check,
                                           "--inventory", str(inventory), "--json", f"{tmp}/r.json"],
                                          capture_output=True, text=True)
                outcome, old, got = hakit_figures(Path(tmp) / "r.json", list(netns))
                if not old:
                    print(f"{check:8} {run + 1:3} no fault in hakit's timeline ({outcome}): {done.stdout[-800:]}")
                    continue
                theirs = seen.figures(old)
                periods.append(seen.period())
                for name, value in theirs.items():
                    if name in got:
                        diffs.setdefault(f"{check} {name}", []).append(got[name] - value)
                        print(f"{check:8} {run + 1:3} {name:32} {got[name]:7.3f}s {value:8.3f}s "
                              f"{got[name] - value:+7.3f}s  ({outcome})", flush=True)
                if done.returncode not in (0, 1):
                    print(done.stdout[-1500:], done.stderr[-1500:], file=sys.stderr)
    print(f"\nobserver resolution: hosts every {statistics.mean(periods) * 1000:.0f} ms achieved "
          f"(asked {HOST_POLL * 1000:.0f} ms), client every {CLIENT_POLL * 1000:.0f} ms")
    print(f"{'figure':42} {'mean diff':>10} {'max |diff|':>11}")
    for key, values in diffs.items():
        print(f"{key:42} {statistics.mean(values):+9.3f}s {max(map(abs, values)):10.3f}s")


if __name__ == "__main__":
    main()
