#!/usr/bin/env python3
"""Benchmark: the read-only audit of a fleet, side by side with popeye.

Brings up its own lab with --bulk-nodes (1,000 kwok nodes in ten zones), fills it with a
fleet the way a cluster is filled: Deployments with PDBs in many namespaces, their pods
created by the controller-manager and placed by the scheduler (default spreading), with
HA problems planted among them under known names (PLANTED). Then runs `hakit check` (the
whole read-only audit) and popeye v0.22.1 on the same cluster, one after the other, and
prints for each its wall time, its peak RSS, and which planted problems it named.

popeye is a benchmark dependency only; it is built once from its Go module into
~/.cache/hakit/bin/popeye-v0.22.1 (see build_popeye).

    sudo .venv/bin/python bench/scale_audit.py [--nodes 1000] [--deployments 3000]
        [--namespaces 100] [--replicas 10] [--wave 500] [--keep | --again LAB_DIR]

On 2 cores the default fleet (3,000 workloads, 29,942 pods) is ready in about 18 min, in
waves of 500 workloads (before the bulk kwok had more workers and the fleet came in waves, kwok
fell behind on the node Leases and it never settled). popeye's memory grows with the pods, so
it runs capped at 80 % of the memory available (killed and said so past it); at 30,000 pods its
one unpaginated pod LIST outlives its fixed 30 s client timeout first, which the bench prints
from popeye's report. --deployments 1000 (9,942 pods) runs both to the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import as_installed, memory_available_mib, timed
from kubernetes import client

from hakit import wait
from hakit.lab import binaries
from hakit.lab.net import free_subnet
from hakit.lab.netns import Lab, down
from hakit.lab.paths import LabPaths
from hakit.lab.topology import LabSpec
from hakit.snapshot import is_ready

POPEYE = "v0.22.1"
PAUSE = {"name": "c", "image": "registry.k8s.io/pause:3.10"}
TOLERATE = [{"operator": "Exists"}]
MONITORING = ("kube-state-metrics", "prometheus")


@dataclass(frozen=True)
class Planted:
    """One HA problem put in the fleet on purpose, and the check that must name it."""
    namespace: str
    name: str
    problem: str
    check: str


PLANTED = [
    Planted("bench-001", "single-replica", "one replica: any node loss takes it to zero", "WL-004"),
    Planted("bench-002", "co-located", "3 replicas pinned to one node", "WL-004"),
    Planted("bench-003", "one-zone", "3 replicas, all in zone-3: a zone loss takes it to zero", "WL-004"),
    Planted("bench-004", "quorum", "StatefulSet of 3 on two nodes: losing one breaks quorum", "WL-004"),
    Planted("bench-005", "expr-selector", "matchExpressions selector, 3 replicas on one node", "WL-004"),
    Planted("bench-006", "blocking-pdb", "PDB maxUnavailable: 0 blocks every drain of its nodes", "WL-005"),
    Planted("bench-007", "no-pdb", "3 replicas and no PodDisruptionBudget", "WL-006"),
    Planted("bench-008", "typo-pdb", "a PDB whose selector matches no pod", "WL-006"),
]


def deployment(ns: str, name: str, replicas: int, selector: dict[str, Any] | None = None,
               node_selector: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"tolerations": TOLERATE, "containers": [PAUSE]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    return {"metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas, "selector": selector or {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}


def pdb(ns: str, name: str, selector: dict[str, Any], **budget: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"selector": selector, **budget}}


def fleet(namespaces: int, deployments: int, replicas: int) -> tuple[list[dict], list[dict], list[dict]]:
    """(Deployments, StatefulSets, PDBs): healthy ones (PDB minAvailable 50%, every fourth with a
    matchExpressions selector) filling each namespace, and PLANTED's problems."""
    deps, sts, pdbs = [], [], []
    planted = {(p.namespace, p.name) for p in PLANTED}
    for i in range(deployments - len(planted)):
        ns, name = f"bench-{i % namespaces:03d}", f"web-{i:05d}"
        sel = ({"matchExpressions": [{"key": "app", "operator": "In", "values": [name]}]} if i % 4 == 0
               else {"matchLabels": {"app": name}})
        deps.append(deployment(ns, name, replicas, sel))
        pdbs.append(pdb(ns, name, sel, minAvailable="50%"))
    by = {p.name: p.namespace for p in PLANTED}

    def labels(name: str) -> dict[str, Any]:
        return {"matchLabels": {"app": name}}

    deps.append(deployment(by["single-replica"], "single-replica", 1))
    pdbs.append(pdb(by["single-replica"], "single-replica", labels("single-replica"), maxUnavailable=1))
    deps.append(deployment(by["co-located"], "co-located", 3, node_selector={"kubernetes.io/hostname": "bulk-00007"}))
    pdbs.append(pdb(by["co-located"], "co-located", labels("co-located"), maxUnavailable=1))
    deps.append(deployment(by["one-zone"], "one-zone", 3, node_selector={"topology.kubernetes.io/zone": "zone-3"}))
    pdbs.append(pdb(by["one-zone"], "one-zone", labels("one-zone"), maxUnavailable=1))
    expr = {"matchExpressions": [{"key": "app", "operator": "In", "values": ["expr-selector"]}]}
    deps.append(deployment(by["expr-selector"], "expr-selector", 3, expr,
                           node_selector={"kubernetes.io/hostname": "bulk-00009"}))
    pdbs.append(pdb(by["expr-selector"], "expr-selector", expr, maxUnavailable=1))
    deps.append(deployment(by["blocking-pdb"], "blocking-pdb", 3))
    pdbs.append(pdb(by["blocking-pdb"], "blocking-pdb", labels("blocking-pdb"), maxUnavailable=0))
    deps.append(deployment(by["no-pdb"], "no-pdb", 3))
    deps.append(deployment(by["typo-pdb"], "typo-pdb", 3))
    pdbs.append(pdb(by["typo-pdb"], "typo-pdb", {"matchExpressions": [
        {"key": "app", "operator": "In", "values": ["typo-pbd"]}]}, maxUnavailable=1))
    two_nodes = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In",
                               "values": ["bulk-00011", "bulk-00012"]}]}]}}}
    quorum = deployment(by["quorum"], "quorum", 3)
    quorum["spec"].update(serviceName="quorum", podManagementPolicy="Parallel")
    quorum["spec"]["template"]["spec"]["affinity"] = two_nodes
    sts.append(quorum)
    pdbs.append(pdb(by["quorum"], "quorum", labels("quorum"), maxUnavailable=1))
    return deps, sts, pdbs


def create_fleet(api: client.ApiClient, namespaces: int, deployments: int, replicas: int, wave: int) -> int:
    """Creates the fleet a wave of `wave` workloads at a time, each wave ready before the next
    (as a fleet grows: all at once, the 2-core lab's scheduler and kwok fell behind the node
    Leases); returns how many pods it runs."""
    core, apps, policy = client.CoreV1Api(api), client.AppsV1Api(api), client.PolicyV1Api(api)
    deps, sts, pdbs = fleet(namespaces, deployments, replicas)
    t0, pods = time.monotonic(), 0
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda i: core.create_namespace({"metadata": {"name": f"bench-{i:03d}"}}), range(namespaces)))
        list(pool.map(lambda d: policy.create_namespaced_pod_disruption_budget(d["metadata"]["namespace"], d), pdbs))
        workloads = [(apps.create_namespaced_deployment, d) for d in deps] + \
            [(apps.create_namespaced_stateful_set, s) for s in sts]
        for start in range(0, len(workloads), wave):
            batch = workloads[start:start + wave]
            list(pool.map(lambda w: w[0](w[1]["metadata"]["namespace"], w[1]), batch))
            pods += sum(d["spec"]["replicas"] for _, d in batch)

            def ready(want: int = pods) -> bool:
                n = ready_pods(api)
                print(f"  {n} of {want} pods ready ({time.monotonic() - t0:.0f} s)", flush=True)
                return n >= want
            wait.until(ready, 1800, f"{pods} pods ready", interval=15)
    return pods


def ready_pods(api: client.ApiClient) -> int:
    apps = client.AppsV1Api(api)
    return sum(d.status.ready_replicas or 0 for d in apps.list_deployment_for_all_namespaces().items) + sum(
        s.status.ready_replicas or 0 for s in apps.list_stateful_set_for_all_namespaces().items)


def build_popeye() -> Path:
    """popeye from its Go module at the exact version (the proxy serves no version list, so
    `go install …@version` fails on its deprecation lookup): a module requiring it, built."""
    out = binaries.cache_dir() / f"popeye-{POPEYE}" / "popeye"
    if out.exists():
        return out
    mod = binaries.cache_dir().parent / "build" / f"popeye-{POPEYE}"
    mod.mkdir(parents=True, exist_ok=True)
    (mod / "go.mod").write_text(f"module hakit.local/popeye\n\ngo 1.26.0\n\n"
                                  f"require github.com/derailed/popeye {POPEYE}\n")
    (mod / "tools.go").write_text('//go:build tools\n\npackage tools\n\nimport _ "github.com/derailed/popeye"\n')
    env = {**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
    print(f"building popeye {POPEYE} (a few minutes, once)", flush=True)
    subprocess.run(["go", "mod", "tidy"], cwd=mod, env=env, check=True)
    subprocess.run(["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(out), "github.com/derailed/popeye"],
                   cwd=mod, env=env, check=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--deployments", type=int, default=3000)
    parser.add_argument("--namespaces", type=int, default=100)
    parser.add_argument("--replicas", type=int, default=10, help="of each healthy Deployment")
    parser.add_argument("--wave", type=int, default=500, help="workloads created at a time, each wave ready first")
    parser.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    parser.add_argument("--again", metavar="LAB_DIR", type=Path,
                        help="only audit again a fleet a --keep run left up (its lab directory; give the same "
                             "--namespaces)")
    args = parser.parse_args()
    popeye = build_popeye()
    if args.again:
        run(LabPaths(args.again), popeye, args)
        return
    root = Path(tempfile.mkdtemp(prefix="hakit-bench-"))
    paths = LabPaths(root / "lab")
    lab = Lab(LabSpec(subnet=free_subnet(), prefix="hks", bulk_nodes=args.nodes), paths)
    try:
        t0 = time.monotonic()
        lab.up(progress=lambda m: print(f"[lab] {m}", flush=True), timeout=900)
        print(f"lab with {args.nodes} bulk nodes up in {time.monotonic() - t0:.0f} s", flush=True)
        api = lab.api()
        core = client.CoreV1Api(api)
        wait.until(lambda: sum(1 for n in core.list_node(label_selector="hakit.io/bulk=true").items
                               if is_ready(n))
                   >= args.nodes, 600, "bulk nodes Ready", interval=5)
        # kube-state-metrics and Prometheus would follow every one of 30,000 pods being placed
        # (gigabytes, and the CPU kwok needs to keep 1,000 node Leases renewed on 2 cores):
        # stopped while the fleet is built, started again to be audited.
        for component in MONITORING:
            lab.host("mon").stop(component)
        t0 = time.monotonic()
        pods = create_fleet(api, args.namespaces, args.deployments, args.replicas, args.wave)
        print(f"fleet of {pods} pods ready {time.monotonic() - t0:.0f} s after its creation began "
              f"(lab: {paths.root})", flush=True)
        for component in reversed(MONITORING):
            lab.host("mon").start(component)
        wait.until(lambda: all(s.healthy for s in lab.status()), 300, "the lab's components healthy", interval=5)
        time.sleep(60)   # a few scrapes of the whole fleet before the audit reads Prometheus
        run(paths, popeye, args)
    finally:
        if not args.keep:
            down(paths, progress=lambda _: None)
            root.rmdir()   # the lab's down removed what was in it


def run(paths: LabPaths, popeye: Path, args: argparse.Namespace) -> None:
    results = paths.root / "results.json"
    env = as_installed(paths.inventory)
    h_wall, h_rss, h, _ = timed([sys.executable, "-m", "hakit.cli", "check", "--inventory", str(paths.inventory),
                                 "--json", str(results), "--", "-q"], env=env)
    doc = json.loads(results.read_text())
    said = {r["check"]["id"]: json.dumps(r) for r in doc["results"] if r["outcome"] in ("fail", "warn")}
    print(f"\nfleet: {args.nodes + 6} nodes in 10 zones, {args.deployments} workloads, {args.namespaces} namespaces")
    # popeye's memory grows with the pods (measured: 2.9 GiB at 2,942, 9.1 GiB at 9,942); past
    # what is free the kernel would kill the lab it audits. So it runs capped at 80 % of what is
    # available, with Go's GOMEMLIMIT set just below (its GC then works hardest to fit), and a
    # run that hits the cap is reported as such, with how long it had run.
    cap = 0.8 * memory_available_mib()
    p_wall, p_rss, p, capped = timed(
        [str(popeye), "--kubeconfig", str(paths.admin_kubeconfig), "-A", "-o", "json", "--force-exit-zero"],
        cap_mib=cap, env={**os.environ, "GOMEMLIMIT": f"{int(cap * 0.9)}MiB"})
    p_wall_s, p_rss_s = f"{p_wall:.1f}s", f"{p_rss:.0f}MiB"
    if capped:
        print(f"popeye killed after {p_wall:.0f} s at {p_rss / 1024:.1f} GiB, the cap (80 % of the memory "
              f"available, GOMEMLIMIT {cap * 0.9 / 1024:.1f} GiB): no report")
        p_wall_s, p_rss_s = f">{p_wall:.0f}s (killed)", f">{p_rss:.0f}MiB"
    report = p.stdout if p.returncode == 0 else ""
    # popeye exits 0 (--force-exit-zero) even when a LIST failed: its sections are then empty
    # and the error is in the report, e.g. a pod LIST longer than its fixed 30 s client timeout
    # (it does not paginate)
    popeye_error = (json.loads(report).get("popeye", {}).get("errors") or {}) if report else {}
    print(f"{'':28}{'hakit':>16}{'popeye ' + POPEYE:>20}")
    print(f"{'wall time':28}{h_wall:15.1f}s{p_wall_s:>20}")
    print(f"{'peak RSS':28}{h_rss:14.0f}MiB{p_rss_s:>20}")
    print(f"{'Kubernetes API requests':28}{doc['kubernetes_api_requests']:>16}{'(not counted)':>20}")
    print(f"{'exit code':28}{h.returncode:>16}{'killed' if capped else p.returncode:>20}")
    found = {"hakit": 0, "popeye": 0}
    print(f"\n{'planted HA problem':64}{'hakit':>7}{'popeye':>8}")
    for pl in PLANTED:
        key = f"{pl.namespace}/{pl.name}"
        by_hakit = key in said.get(pl.check, "")
        # popeye says much about every workload (no probes, no limits): only what it says about
        # the planted one and not about a healthy sibling in the same namespace counts
        extra = popeye_says(report, key) - popeye_says(report, sibling(pl.namespace, args))
        found["hakit"] += by_hakit
        found["popeye"] += bool(extra)
        print(f"{key + ': ' + pl.problem:64.64}{'yes' if by_hakit else 'NO':>7}{'yes' if extra else 'no':>8}"
              + (f"  popeye: {'; '.join(sorted(extra))}" if extra else ""))
    print(f"{'found':64}{found['hakit']:>4}/{len(PLANTED)}{found['popeye']:>5}/{len(PLANTED)}")
    healthy = {w for text in said.values() for w in re.findall(r"bench-\d{3}/web-\d{5}", text)}
    print(f"healthy workloads hakit named in a finding (false alarms): {len(healthy)} {sorted(healthy)[:5]}")
    print(f"hakit outcomes: {doc['summary']}")
    slowest = sorted(doc["results"], key=lambda r: -r.get("duration", 0))[:6]
    print("hakit's slowest checks: " + ", ".join(f"{r['check']['id']} {r.get('duration', 0):.1f} s" for r in slowest))
    if p.returncode != 0 and not capped:
        print(f"popeye failed (exit {p.returncode}): {p.stderr.strip()[-300:]}")
    if popeye_error:
        print(f"popeye's report says it failed to read the cluster, so its findings cover only what it read: "
              f"{json.dumps(popeye_error)[:300]}")


def sibling(namespace: str, args: argparse.Namespace) -> str:
    """A healthy Deployment of the same namespace (fleet() names them web-NNNNN round-robin)."""
    i = int(namespace.split("-")[1]) + args.namespaces   # the namespace's second healthy one
    return f"{namespace}/web-{i:05d}"


def popeye_says(report: str, key: str) -> set[str]:
    """popeye's messages about `ns/name` in any section, info level and above (the benefit of the doubt)."""
    if not report:
        return set()
    return {i.get("message", "") for section in json.loads(report).get("popeye", {}).get("sections") or []
            for name, issues in (section.get("issues") or {}).items() if name == key
            for i in issues or [] if i.get("level", 0) >= 1}


if __name__ == "__main__":
    main()
