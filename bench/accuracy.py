#!/usr/bin/env python3
"""Benchmark: do hakit's failover figures agree with an independent observer?

Runs VIP-D01 (keepalived stopped on the holder), VIP-D03 (the holder's link down),
API-D01 (an apiserver stopped) and ETCD-D02 (the etcd leader killed) N times each on the
netns lab, while this script watches the same events its own way: no SSH, no hakit code
in the path. It subscribes to each host's address and link events straight in its
network namespace (`ip -n NS monitor`, stamped on arrival here); a new client of its own
asks /readyz through the VIP every 20 ms, each on a new connection and its own thread;
each apiserver's own /readyz and each etcd member's status (its leader) are asked every
20 ms too. Per run it prints hakit's figure beside the observer's and their difference;
then the median, the mean and the largest difference, which is the accuracy to quote
(with the observer's own resolution).

    sudo .venv/bin/python bench/accuracy.py [--runs 5] [--load N] [--check ID ...]

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import urllib3
from common import busy_loops

from hakit.inventory import load
from hakit.lab.netns import Lab
from hakit.paths import lab_dir

urllib3.disable_warnings()
CLIENT_POLL = 0.02
CHECKS = ("VIP-D01", "VIP-D03", "API-D01", "ETCD-D02")


class Observer:
    """Records, on its own threads, stamped with time.monotonic() on arrival: VIP holders and
    links down as each host's kernel reports a change; API answered through the VIP, each
    apiserver's own /readyz, and each etcd member's leader (None: no answer), every 20 ms."""

    def __init__(self, netns: dict[str, str], vip: str, url: str, apiservers: dict[str, str],
                 etcd: dict[str, str], etcd_tls: tuple[str, tuple[str, str]]) -> None:
        self.netns, self.vip, self.url = netns, vip, url
        self.hosts: list[tuple[float, frozenset[str], frozenset[str]]] = []
        self.api: list[tuple[float, bool]] = []
        self.readyz: dict[str, list[tuple[float, bool]]] = {h: [] for h in apiservers}
        self.leader: dict[str, list[tuple[float, str | None]]] = {h: [] for h in etcd}
        self._holders: set[str] = set()
        self._down: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._procs: list[subprocess.Popen[str]] = []
        self._threads = [threading.Thread(target=self._watch_api, daemon=True)]
        self._threads += [threading.Thread(target=self._poll, args=(self.readyz[h], readyz(u)), daemon=True)
                          for h, u in apiservers.items()]
        self._threads += [threading.Thread(target=self._poll, args=(self.leader[h], leader_of(u, *etcd_tls)),
                                           daemon=True) for h, u in etcd.items()]
        for name, ns in netns.items():
            if f" {vip}/" in subprocess.run(["ip", "-n", ns, "-o", "addr", "show"], capture_output=True,
                                             text=True).stdout:
                self._holders.add(name)
            self._threads.append(threading.Thread(target=self._watch_host, args=(name, ns), daemon=True))
        self.hosts.append((time.monotonic(), frozenset(self._holders), frozenset()))

    def _watch_host(self, name: str, ns: str) -> None:
        """The host's own netlink events, read here directly (no SSH, no hakit code), stamped
        on arrival: a change is seen within the kernel's and one pipe's latency."""
        proc = subprocess.Popen(["ip", "-n", ns, "-o", "monitor", "address", "link"], stdout=subprocess.PIPE,
                                text=True, bufsize=1)
        self._procs.append(proc)
        assert proc.stdout is not None
        for line in proc.stdout:
            t = time.monotonic()
            with self._lock:
                if f" {self.vip}/" in line:
                    (self._holders.discard if line.startswith("Deleted") else self._holders.add)(name)
                elif " eth0" in line and "<" in line:   # a link event of eth0
                    (self._down.add if "state DOWN" in line or ",UP" not in line else self._down.discard)(name)
                else:
                    continue
                self.hosts.append((t, frozenset(self._holders), frozenset(self._down)))

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

    def _poll(self, into: list[tuple[float, Any]], ask: Callable[[], Any]) -> None:
        """ask() every 20 ms, stamped when it was sent (a stopped server refuses at once)."""
        while not self._stop.is_set():
            t = time.monotonic()
            into.append((t, ask()))
            self._stop.wait(max(0.0, CLIENT_POLL - (time.monotonic() - t)))

    def __enter__(self) -> Observer:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for p in self._procs:
            p.terminate()
        for t in self._threads:
            t.join()
        time.sleep(1.5)   # the last clients' answers or timeouts
        self.api.sort()

    def figures(self, check: str, old: str) -> dict[str, float]:
        """The observer's own figures for the fault hakit put on host `old`, under hakit's names."""
        if check == "API-D01":
            effect = first(self.readyz[old], lambda ok: not ok)
            back = next((t for t, ok in self.readyz[old] if ok and t > effect), float("inf"))
            return {"client outage during the fault": self._outage(effect - 1, back)}
        if check == "ETCD-D02":
            return self._election(old)
        return self._vip(old)

    def _vip(self, old: str) -> dict[str, float]:
        """The fault's effect (old dropped the VIP or its link went down), the VIP's move to
        another host after it, and the first client outage, in seconds."""
        effect = next(t for t, holders, down in self.hosts if old not in holders or old in down)
        moved = next(t for t, holders, _ in self.hosts if t >= effect and holders - {old})
        # requests that began during the failover: until the takeover + 0.5 s
        return {"VIP move": moved - effect, "client outage during the fault": self._outage(effect - 1, moved + 0.5)}

    def _outage(self, start: float, end: float) -> float:
        """The same definition as hakit's: from the first failed request begun in [start, end]
        to the first good one after the last of them; 0 when none failed."""
        bad = [t for t, ok in self.api if not ok and start <= t <= end]
        return next(t for t, ok in self.api if ok and t > bad[-1]) - bad[0] if bad else 0.0

    def _election(self, old: str) -> dict[str, float]:
        """From the killed member's first unanswered status to the first moment every survivor
        names one leader, not the old one."""
        before = next(v for _, v in self.leader[old] if v)
        effect = first(self.leader[old], lambda v: v is None)
        survivors = [h for h in self.leader if h != old]
        for t, _ in sorted(p for h in survivors for p in self.leader[h] if p[0] >= effect):
            now = {latest(self.leader[h], t) for h in survivors}
            if len(now) == 1 and not now & {None, "0", before}:
                return {"leader election": t - effect}
        return {}


def first(samples: list[tuple[float, Any]], pred: Callable[[Any], bool]) -> float:
    return next(t for t, v in samples if pred(v))


def latest(samples: list[tuple[float, Any]], at: float) -> Any:
    return next((v for t, v in reversed(samples) if t <= at), None)


def readyz(url: str) -> Callable[[], bool]:
    def ask() -> bool:
        try:
            return requests.get(url, verify=False, timeout=0.5).text == "ok"
        except requests.RequestException:
            return False
    return ask


def leader_of(endpoint: str, ca: str, cert: tuple[str, str]) -> Callable[[], str | None]:
    """etcd's own answer to "who leads", through its gRPC gateway with the inventory's client
    certificate, on one keep-alive connection (a stopped member refuses at once)."""
    session = requests.Session()
    session.cert = cert

    def ask() -> str | None:   # verify per request: a session's own is overridden by REQUESTS_CA_BUNDLE
        try:
            return str(session.post(f"{endpoint}/v3/maintenance/status", json={}, timeout=0.5, verify=ca)
                       .json()["leader"])
        except (requests.RequestException, ValueError, KeyError):
            return None
    return ask


def hakit_figures(results: Path, hosts: list[str]) -> tuple[str, str, dict[str, tuple[float, float]]]:
    """(outcome, the host hakit broke, as its timeline's first event names it, {figure: (seconds, ±)})."""
    r = json.loads(results.read_text())["results"][0]
    got = {m["name"]: (m["seconds"], float(pm.group(1)) if (pm := re.search(r"± ([\d.]+)", str(m["value"]))) else 0.0)
           for m in r["evidence"] if m.get("seconds") is not None}
    fault = r["timeline"][0]["what"] if r.get("timeline") else ""
    return r["outcome"], next((h for h in hosts if re.search(rf"\b{h}\b", fault)), ""), got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--check", action="append", choices=CHECKS, help="only these (repeatable); default all")
    parser.add_argument("--load", type=int, default=0, metavar="N",
                        help="N busy loops running throughout (N = the cores: the machine saturated)")
    args = parser.parse_args()
    with busy_loops(args.load):
        compare(args.runs, args.check or CHECKS)
    print(f"(with {args.load} busy loops)" if args.load else "(idle but for the lab)")


def compare(runs: int, checks: list[str] | tuple[str, ...]) -> None:
    inventory = lab_dir() / "inventory.yaml"
    inv = load(inventory)
    netns = {h.name: h.netns for h in Lab.load().spec.control_plane_hosts}
    apiservers = {h.name: f"https://{h.address}:{inv.apiserver_port}/readyz" for h in inv.control_plane}
    etcd = {h.name: next(e for e in inv.etcd.endpoints if f"//{h.address}:" in e) for h in inv.control_plane}
    tls = (str(inv.etcd.ca), (str(inv.etcd.cert), str(inv.etcd.key)))
    diffs: dict[str, list[float]] = {}
    inside: dict[str, list[bool]] = {}   # hakit's ± covered the difference (plus the observer's 20 ms)
    print(f"{'check':8} {'run':>3} {'figure':32} {'hakit':>8} {'±':>6} {'observer':>9} {'diff':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for check in checks:
            for run in range(runs):
                with Observer(netns, inv.vip, inv.vip_url + "/readyz", apiservers, etcd, tls) as seen:
                    done = subprocess.run([sys.executable, "-m", "hakit.cli", "check", "--disruptive", "--check", check,
                                           "--inventory", str(inventory), "--json", f"{tmp}/r.json"],
                                          capture_output=True, text=True)
                outcome, old, got = hakit_figures(Path(tmp) / "r.json", list(netns))
                if not old:
                    print(f"{check:8} {run + 1:3} no fault in hakit's timeline ({outcome}): {done.stdout[-800:]}")
                    continue
                theirs = seen.figures(check, old)
                for name, value in theirs.items():
                    if name in got:
                        mine, pm = got[name]
                        diffs.setdefault(f"{check} {name}", []).append(mine - value)
                        inside.setdefault(f"{check} {name}", []).append(abs(mine - value) <= pm + 0.02)
                        print(f"{check:8} {run + 1:3} {name:32} {mine:7.3f}s ±{pm:5.3f} {value:8.3f}s "
                              f"{mine - value:+7.3f}s  ({outcome})", flush=True)
                if done.returncode not in (0, 1):
                    print(done.stdout[-1500:], done.stderr[-1500:], file=sys.stderr)
    print(f"\nobserver resolution: host events as the kernel reports them (ms), a new client every "
          f"{CLIENT_POLL * 1000:.0f} ms")
    print(f"{'figure':44} {'median diff':>12} {'mean diff':>10} {'max |diff|':>11} {'within hakit ±':>15}")
    for key, values in diffs.items():
        print(f"{key:44} {statistics.median(values):+11.3f}s {statistics.mean(values):+9.3f}s "
              f"{max(map(abs, values)):10.3f}s "
              f"{f'{sum(inside[key])}/{len(inside[key])}':>15}")


if __name__ == "__main__":
    main()
