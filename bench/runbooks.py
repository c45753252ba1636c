#!/usr/bin/env python3
"""Benchmark: how long each runbook takes to repair, end to end and step by step.

Each runbook runs unattended on a healthy lab, which it is built to leave healthy:
a backup; a member replaced (force=yes); the whole cluster restored from that
backup; the load balancer re-provisioned; an apiserver restarted. Prints the wall
time per run, then each step's median from the run journals (the closing checks
are the step "checks"). Figures, not a test. Uses the lab at $HAKIT_LAB_DIR
(`hakit lab up` first); everything it writes after the backup is lost by the restore.

    sudo .venv/bin/python bench/runbooks.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from hakit.paths import lab_dir

RUNS = [("etcd-backup", ["keep=3"]), ("etcd-replace-member", ["host=cp3", "force=yes"]),
        ("etcd-restore-snapshot", []), ("provision-api-lb", []),
        ("control-plane-restart", ["host=cp2", "component=kube-apiserver"])]


def step_seconds(journal: Path) -> dict[str, float]:
    """Each step's time from its start to its end, and the closing checks', from a run journal."""
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    started: dict[str, float] = {}
    out: dict[str, float] = {}
    last = records[0]["at"]
    for r in records:
        if r["event"] == "step" and r["status"] == "started":
            started[r["step"]] = r["at"]
        elif r["event"] == "step" and r["status"] == "done":
            out[r["step"]] = r["at"] - started.get(r["step"], r["at"])
            last = r["at"]
        elif r["event"] == "checks":
            out["checks"] = r["at"] - last
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    walls: dict[str, list[float]] = defaultdict(list)
    steps: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "HAKIT_RUNBOOK_DIR": tmp, "HAKIT_INVENTORY": str(lab_dir() / "inventory.yaml")}
        for run in range(args.runs):
            for name, params in RUNS:
                before = set(Path(tmp).glob("*.jsonl"))
                started = time.monotonic()
                done = subprocess.run([sys.executable, "-m", "hakit.cli", "runbook", "run", name, "--yes", *params],
                                      capture_output=True, text=True, env=env)
                walls[name].append(time.monotonic() - started)
                [journal] = set(Path(tmp).glob("*.jsonl")) - before
                for step, seconds in step_seconds(journal).items():
                    steps[name][step].append(seconds)
                print(f"run {run + 1} {name}: {walls[name][-1]:.1f} s, exit {done.returncode}"
                      + (f": {done.stderr.strip()[-200:]}" if done.returncode else ""), flush=True)
    for name, _ in RUNS:
        print(f"\n{name}: median {statistics.median(walls[name]):.1f} s "
              f"(min {min(walls[name]):.1f}, max {max(walls[name]):.1f}) over {args.runs} run(s)")
        for step, values in steps[name].items():
            print(f"    {step:14} {statistics.median(values):6.1f} s")


if __name__ == "__main__":
    main()
