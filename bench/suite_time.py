#!/usr/bin/env python3
"""Benchmark: the budget of hakit's own verification. Prints the main job's set-up and
audit time (warm, and with --cold from empty caches), each test tier's wall time and the
slowest tests, so the suite's minutes are watched rather than discovered in CI.

    sudo .venv/bin/python bench/suite_time.py --last          # the last `make test`'s JUnit XML
    sudo .venv/bin/python bench/suite_time.py --tests         # run `make test` now, then report it
    sudo python3 bench/suite_time.py --audit [--cold]         # time `make audit`, warm or cold

--cold builds into an empty cache of its own (HAKIT_CACHE in a temporary directory) with .venv
moved aside (and put back after): a new user's first `make audit`, leaving your caches as they
were; --cold-go gives Go empty module and build caches too (a fresh machine's).
Figures, not assertions: the budget is 40 min for `make test` warm and 15 min for a cold
`make audit` (issue 26); this prints where each stands.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "reports" / "suite"


def run(argv: list[str], env: dict[str, str] | None = None) -> float:
    """Seconds a command took; its output goes to the terminal (long waits show progress)."""
    began = time.monotonic()
    done = subprocess.run(argv, cwd=ROOT, env=env)
    took = time.monotonic() - began
    if done.returncode:
        sys.exit(f"{' '.join(argv)} failed (exit {done.returncode}) after {took:.0f} s")
    return took


def audit(cold: bool, cold_go: bool) -> None:
    """`make setup`, then `make audit` (lab up and the audit), from a lab that is down."""
    hakit = ROOT / ".venv" / "bin" / "hakit"
    if hakit.exists():
        subprocess.run([str(hakit), "lab", "down"], cwd=ROOT, capture_output=True)
    env = dict(os.environ)
    cache = Path(env.get("HAKIT_CACHE", Path.home() / ".cache" / "hakit"))
    empty = not (ROOT / ".venv").exists() and not cache.exists()   # a fresh machine's: warm runs are cold
    aside = ROOT / ".venv.suite-time"
    with tempfile.TemporaryDirectory(prefix="hakit-cold-") as tmp:
        if cold:
            env["HAKIT_CACHE"] = f"{tmp}/hakit"
            if cold_go:
                env.update(GOMODCACHE=f"{tmp}/gomod", GOCACHE=f"{tmp}/gobuild")
            if (ROOT / ".venv").exists():
                (ROOT / ".venv").rename(aside)
        try:
            setup = run(["make", "setup"], env)
            rest = run(["make", "audit"], env)   # its set-up step is now warm: seconds
        finally:
            if cold:
                subprocess.run([str(hakit), "lab", "down"], cwd=ROOT, env=env, capture_output=True)
                shutil.rmtree(ROOT / ".venv", ignore_errors=True)
                if aside.exists():
                    aside.rename(ROOT / ".venv")
                subprocess.run(["chmod", "-R", "u+w", tmp], check=False)   # Go's module cache is read-only
    label = ("cold (empty hakit cache and .venv" + (", empty Go caches)" if cold_go else ")")) if cold else (
        "cold (this machine's own caches were empty: no hakit cache, no .venv)" if empty else "warm")
    print(f"\nmake audit, {label}: {setup + rest:.0f} s = set-up {setup:.0f} s + lab up and audit {rest:.0f} s")


LANES = {"lane 1": ("netns",), "lane 2": ("kubeadm", "netns-2")}   # scripts/test.sh: side by side


def report() -> None:
    """Each tier's and lane's wall time and the 20 slowest tests of the last run, from its JUnit
    XML (a test's time there is its set-up, call and tear-down: the lab's bring-up is in the first)."""
    cases, minutes = [], {}
    for xml in sorted(SUITE.glob("*.xml")):
        suite = ET.parse(xml).getroot()
        suite = suite.find("testsuite") if suite.tag == "testsuites" else suite
        outcomes = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
        minutes[xml.stem] = float(suite.get("time", 0)) / 60
        print(f"{xml.stem:8} {minutes[xml.stem]:5.1f} min  {outcomes['tests']} tests, "
              f"{outcomes['failures']} failed, {outcomes['errors']} errors, {outcomes['skipped']} skipped"
              f"  (started {suite.get('timestamp', '?')})")
        for case in suite.iter("testcase"):
            cases.append((float(case.get("time", 0)), xml.stem, f"{case.get('classname')}::{case.get('name')}"))
    if not cases:
        sys.exit(f"no JUnit XML under {SUITE}: run `make test` (or --tests) first")
    for lane, tiers in LANES.items():
        print(f"{lane}: {sum(minutes.get(t, 0) for t in tiers):5.1f} min ({' then '.join(tiers)})")
    print("\nslowest tests (set-up + call + tear-down):")
    for took, tier, name in sorted(cases, reverse=True)[:20]:
        print(f"{took:7.0f} s  {tier:8} {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--last", action="store_true", help="report the last make test (reports/suite/*.xml)")
    what.add_argument("--tests", action="store_true", help="run make test, then report it")
    what.add_argument("--audit", action="store_true", help="time make audit")
    parser.add_argument("--cold", action="store_true", help="with --audit: from empty caches (removes them!)")
    parser.add_argument("--cold-go", action="store_true", help="with --cold: the Go module and build caches too")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the labs need it")
    if args.audit:
        audit(args.cold, args.cold_go)
        return
    if args.tests:
        took = time.monotonic()
        subprocess.run(["make", "test"], cwd=ROOT)
        print(f"\nmake test: {(time.monotonic() - took) / 60:.1f} min wall, set-up included\n")
    report()


if __name__ == "__main__":
    main()
