#!/usr/bin/env python3
"""Benchmark: what every hakit run pays at start-up to import the Kubernetes client classes
it uses (and, where installed, hypothesis, whose pytest plugin the audit does not load), for
each Python environment named: pyproject pins kubernetes below 37, whose models are pydantic
classes. Prints the client version and the median wall time of N fresh interpreters.

    .venv/bin/python bench/import_time.py [--runs 5] [--python OTHER_VENV/bin/python ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys

from common import timed

CLIENT = ("import kubernetes; from kubernetes import client; "
          "[client.CoreV1Api, client.AppsV1Api, client.CoordinationV1Api, client.PolicyV1Api]; "
          "print(kubernetes.__version__)")
HYPOTHESIS = "import _hypothesis_pytestplugin"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--python", action="append", default=[], help="another environment's python (repeatable)")
    args = parser.parse_args()
    for python in [sys.executable, *args.python]:
        for what, code in (("kubernetes client", CLIENT), ("hypothesis plugin", HYPOTHESIS)):
            walls, last = [], None
            for _ in range(args.runs):
                wall, _, last, _ = timed([python, "-c", code])
                walls.append(wall)
            if last is None or last.returncode != 0:
                print(f"{python}: {what}: not importable")
                continue
            version = last.stdout.strip() or "-"
            print(f"{python}: {what} {version}: median {statistics.median(walls):.2f} s "
                  f"(min {min(walls):.2f}, max {max(walls):.2f}) over {args.runs} runs")


if __name__ == "__main__":
    main()
