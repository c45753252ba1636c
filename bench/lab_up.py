#!/usr/bin/env python3
"""Benchmark: seconds from `hakit lab up` to a healthy lab, with binaries cached.

Runs its own lab (own state dir, prefix and subnet) N times and prints each figure
and the median. The issue's bar is 90 s; it is a figure to watch, not a test.

    sudo .venv/bin/python bench/lab_up.py [--runs 3] [--kubeadm]

--kubeadm: the kubeadm lab instead (LXC hosts installed by the provisioning runbooks);
each run also prints how long each runbook took.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from hakit.lab import nodes
from hakit.lab.kubeadm import KubeadmLab
from hakit.lab.net import free_subnet
from hakit.lab.netns import Lab, down
from hakit.lab.paths import LabPaths
from hakit.lab.topology import LabSpec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kubeadm", action="store_true", help="the kubeadm lab (bar: none set yet)")
    args = parser.parse_args()
    figures = []
    if args.kubeadm:
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.runs):
                lab = KubeadmLab(nodes.Spec(subnet=free_subnet(), prefix="hkb"), nodes.Paths(Path(tmp) / "kubeadm"))
                start = time.monotonic()
                try:
                    lab.up(progress=lambda msg, start=start: print(f"  [{time.monotonic() - start:5.1f}s] {msg}"))
                    figures.append(time.monotonic() - start)
                finally:
                    lab.down(progress=lambda _: None)
                print(f"run {i + 1}: kubeadm lab installed and monitored in {figures[-1]:.1f} s")
        print(f"kubeadm lab up (warm cache): median {statistics.median(figures):.1f} s over {len(figures)} runs")
        return
    with tempfile.TemporaryDirectory() as tmp:
        paths = LabPaths(Path(tmp) / "lab")
        for i in range(args.runs):
            lab = Lab(LabSpec(subnet=free_subnet(), prefix="hkb"), paths)
            start = time.monotonic()
            try:
                lab.up(progress=lambda _: None)
                figures.append(time.monotonic() - start)
            finally:
                down(paths, progress=lambda _: None)
            print(f"run {i + 1}: lab healthy in {figures[-1]:.1f} s")
    print(f"lab up (warm cache): median {statistics.median(figures):.1f} s over {len(figures)} runs (bar: 90 s)")


if __name__ == "__main__":
    main()
