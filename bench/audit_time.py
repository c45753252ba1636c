#!/usr/bin/env python3
"""Benchmark: how long the read-only audit of a lab takes, idle and with the machine loaded.

Runs `hakit check` (every read-only check, as `hakit audit` runs them) N times on the lab
at $HAKIT_LAB_DIR, as installed from a wheel (bytecode compiled, a first collection
done), and prints each run's wall time and peak RSS, their median, and the checks that
took longest in the slowest run. With --load N, N busy loops spin throughout (N = the
cores: every lab process then competes for CPU, as on a busy node).

    sudo .venv/bin/python bench/audit_time.py [--runs 5] [--load N]

Uses the lab at $HAKIT_LAB_DIR (`hakit lab up` first).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from common import as_installed, busy_loops, timed

from hakit.paths import lab_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--load", type=int, default=0, metavar="N", help="N busy loops running throughout")
    args = parser.parse_args()
    inventory = lab_dir() / "inventory.yaml"
    env = as_installed(inventory)
    walls, rss, slowest = [], [], []
    with tempfile.TemporaryDirectory() as tmp, busy_loops(args.load):
        for run in range(args.runs):
            out = Path(tmp) / "r.json"
            wall, peak, done, _ = timed([sys.executable, "-m", "hakit.cli", "check", "--inventory", str(inventory),
                                         "--json", str(out), "--", "-q"], env=env)
            doc = json.loads(out.read_text())
            walls.append(wall)
            rss.append(peak)
            print(f"run {run + 1}: {wall:.2f} s, {peak:.0f} MiB, exit {done.returncode}, {doc['summary']}", flush=True)
            if wall == max(walls):
                slowest = sorted(doc["results"], key=lambda r: -r.get("duration", 0))[:5]
    print(f"\nread-only audit, {f'{args.load} busy loops' if args.load else 'idle but for the lab'}: "
          f"median {statistics.median(walls):.2f} s (min {min(walls):.2f}, max {max(walls):.2f}) over {args.runs} "
          f"runs; peak RSS median {statistics.median(rss):.0f} MiB")
    print("slowest checks in the slowest run: " + ", ".join(
        f"{r['check']['id']} {r.get('duration', 0):.1f} s" for r in slowest))


if __name__ == "__main__":
    main()
