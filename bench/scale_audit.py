#!/usr/bin/env python3
"""Benchmark: the read-only audit on a big cluster.

Brings up its own lab with --bulk-nodes (default 1,000 kwok nodes), creates pods
on them (default 30,000, bound directly to nodes so the bench does not wait on
the scheduler's rate limits), waits until kwok reports them Running, then runs
`hakit check` and prints its wall time, peak RSS and Kubernetes API requests.

    sudo .venv/bin/python bench/scale_audit.py [--nodes 1000] [--pods 30000] [--keep]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kubernetes import client

from hakit import wait
from hakit.lab import Lab, down, free_subnet
from hakit.lab.paths import LabPaths
from hakit.lab.topology import LabSpec

NAMESPACE = "hakit-bench"


def create_pods(api: client.ApiClient, nodes: list[str], count: int) -> float:
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": NAMESPACE}})
    start = time.monotonic()

    def create(i: int) -> None:
        core.create_namespaced_pod(NAMESPACE, {
            "metadata": {"name": f"p-{i:05d}", "labels": {"app": f"bench-{i % 100}"}},
            "spec": {"nodeName": nodes[i % len(nodes)],
                     "tolerations": [{"operator": "Exists"}],
                     "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}})

    with ThreadPoolExecutor(max_workers=32) as pool:
        for n, _ in enumerate(pool.map(create, range(count)), 1):
            if n % 5000 == 0:
                print(f"  {n} pods created ({time.monotonic() - start:.0f} s)", flush=True)
    return time.monotonic() - start


def running_pods(api: client.ApiClient) -> int:
    core, token, running = client.CoreV1Api(api), None, 0
    while True:
        page = core.list_namespaced_pod(NAMESPACE, limit=500, _continue=token, field_selector="status.phase=Running")
        running += len(page.items)
        token = page.metadata._continue
        if not token:
            return running


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=30000)
    parser.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="hakit-bench-"))
    paths = LabPaths(root / "lab")
    lab = Lab(LabSpec(subnet=free_subnet(), prefix="hks", bulk_nodes=args.nodes), paths)
    try:
        t0 = time.monotonic()
        lab.up(progress=lambda m: print(f"[lab] {m}", flush=True), timeout=900)
        print(f"lab with {args.nodes} bulk nodes up in {time.monotonic() - t0:.0f} s")
        api = lab.api()
        core = client.CoreV1Api(api)
        wait.until(lambda: sum(1 for n in core.list_node(label_selector="hakit.io/bulk=true").items
                               if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or []))
                   >= args.nodes, 600, "bulk nodes Ready", interval=5)
        secs = create_pods(api, lab.spec.bulk_node_names(), args.pods)
        print(f"{args.pods} pods created in {secs:.0f} s")
        wait.until(lambda: running_pods(api) >= args.pods, 1200, "bench pods Running", interval=10)
        results = root / "results.json"
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "hakit.cli", "check", "--inventory", str(paths.inventory),
                               "--json", str(results), "--", "-q"], capture_output=True, text=True)
        wall = time.monotonic() - start
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        doc = json.loads(results.read_text())
        print(f"read-only audit of {args.nodes + 6} nodes and {args.pods} pods: wall {wall:.1f} s, "
              f"peak RSS {peak_mib:.0f} MiB, {doc['kubernetes_api_requests']} Kubernetes API requests, "
              f"outcomes {doc['summary']} (exit {proc.returncode})")
    finally:
        if not args.keep:
            down(paths, progress=lambda _: None)


if __name__ == "__main__":
    main()
