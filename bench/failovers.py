#!/usr/bin/env python3
"""Benchmark: every measured failover of `hakit audit --disruptive`, run N times on a lab.

Prints each check's key duration per run, then the median and the spread, beside its
SLO: figures to watch over time (the history page draws the same numbers), not a test.
Uses the lab at $HAKIT_LAB_DIR (`hakit lab up` first).

    sudo .venv/bin/python bench/failovers.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from hakit.paths import lab_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    figures: dict[str, list[float]] = defaultdict(list)
    slos: dict[str, float] = {}
    walls = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            started = time.monotonic()
            subprocess.run([sys.executable, "-m", "hakit.cli", "audit", "--disruptive", "--inventory",
                            str(lab_dir() / "inventory.yaml"), "--reports", tmp], capture_output=True)
            walls.append(time.monotonic() - started)
            doc = json.loads((Path(tmp) / "latest" / "results.json").read_text())
            for r in doc["results"]:
                for m in r["evidence"]:
                    if m.get("seconds") is not None:
                        param = f" [{r['nodeid'].split('[')[1]}" if "[" in r["nodeid"] else ""
                        key = f"{r['check']['id']} {m['name']}{param}"
                        figures[key].append(m["seconds"])
                        judged = re.match(r"≤ ([\d.]+) s", m.get("expected") or "")   # the SLO it was held to
                        if judged:
                            slos[key] = float(judged.group(1))
            print(f"run {run + 1}: {walls[-1]:.0f} s, {doc['summary']}", flush=True)
    width = max(map(len, figures), default=8)
    print(f"\n{'measured':{width}} {'median':>8} {'min':>7} {'max':>7} {'SLO':>6}")
    for key, values in sorted(figures.items()):
        slo = f"{slos[key]:5g}s" if key in slos else "     -"
        print(f"{key:{width}} {statistics.median(values):7.2f}s {min(values):6.2f}s {max(values):6.2f}s {slo}")
    print(f"\naudit wall time: median {statistics.median(walls):.0f} s over {args.runs} run(s)")


if __name__ == "__main__":
    main()
