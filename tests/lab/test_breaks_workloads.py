"""Workload checks fail on a lab broken in exactly their way, and pass once restored."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kubernetes import client

from breaking import assert_breaks, stopped
from hakit import wait
from hakit.lab.netns import Lab
from hakit.workloads import ZONE

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("settled")]


def test_wl001_sees_a_lost_node(lab: Lab, tmp_path: Path) -> None:
    """w3's kwok (its kubelet) stops: its Lease lapses and the node goes NotReady."""
    assert_breaks(lab, tmp_path, "WL-001", lambda: stopped(lab, "w3/kwok"), "not Ready: w3", within=60)


@contextmanager
def cordoned(lab: Lab, *nodes: str) -> Iterator[None]:
    core = client.CoreV1Api(lab.api())
    for n in nodes:
        core.patch_node(n, {"spec": {"unschedulable": True}})
    try:
        yield
    finally:
        for n in nodes:
            core.patch_node(n, {"spec": {"unschedulable": False}})


def test_wl002_sees_one_schedulable_worker(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "WL-002", lambda: cordoned(lab, "w1", "w2"), "only 1 schedulable Ready worker")


@contextmanager
def coredns_replicas(lab: Lab, replicas: int) -> Iterator[None]:
    apps = client.AppsV1Api(lab.api())
    apps.patch_namespaced_deployment_scale("coredns", "kube-system", {"spec": {"replicas": replicas}})
    try:
        yield
    finally:
        apps.patch_namespaced_deployment_scale("coredns", "kube-system", {"spec": {"replicas": 2}})


def test_wl003_sees_a_single_replica_critical_workload(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "WL-003", lambda: coredns_replicas(lab, 1), "has 1 replica(s)")


PAUSE = {"name": "c", "image": "registry.k8s.io/pause:3.10"}


@contextmanager
def planted(lab: Lab, ns: str, *objects: dict) -> Iterator[None]:
    """A namespace of workloads (Deployments, StatefulSets) and PDBs, every workload Ready
    before the break is judged; the namespace is gone again after."""
    core, apps, policy = client.CoreV1Api(lab.api()), client.AppsV1Api(lab.api()), client.PolicyV1Api(lab.api())
    create = {"Deployment": apps.create_namespaced_deployment, "StatefulSet": apps.create_namespaced_stateful_set,
              "PodDisruptionBudget": policy.create_namespaced_pod_disruption_budget}
    core.create_namespace({"metadata": {"name": ns}})
    try:
        for o in objects:
            create[o["kind"]](ns, o)
        workloads = {"Deployment": apps.list_namespaced_deployment, "StatefulSet": apps.list_namespaced_stateful_set}
        wait.until(lambda: all((w.status.ready_replicas or 0) == w.spec.replicas
                               for kind in workloads.values() for w in kind(ns).items),
                   90, f"the workloads in {ns} Ready")
        yield
    finally:
        core.delete_namespace(ns)
        wait.until(lambda: ns not in {n.metadata.name for n in core.list_namespace().items}, 120,
                   f"namespace {ns} to be gone")


def workload(kind: str, name: str, replicas: int, pod: dict, selector: dict | None = None) -> dict:
    spec = {"replicas": replicas, "selector": selector or {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [PAUSE], **pod}}}
    if kind == "StatefulSet":
        spec |= {"serviceName": name, "podManagementPolicy": "Parallel"}
    return {"kind": kind, "metadata": {"name": name}, "spec": spec}


def budget(name: str, **spec: object) -> dict:
    return {"kind": "PodDisruptionBudget", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}}, **spec}}


def on(*nodes: str) -> dict:
    """Pods allowed on these nodes only (required node affinity)."""
    return {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": list(nodes)}]}]}}}}


ZONED = "hakit-zone-test"
PLANTED = "hakit-planted-test"


@pytest.mark.parametrize(("objects", "cause"), [
    ((workload("Deployment", "packed", 3, on("w1")), budget("packed", maxUnavailable=1)),
     f"w1: Deployment {PLANTED}/packed to 0 ready"),
    ((workload("StatefulSet", "quorum", 3, on("w1", "w2")),),
     f"StatefulSet {PLANTED}/quorum below quorum (1 of 3)"),
    ((workload("Deployment", "expr", 3, on("w2"), {"matchExpressions": [
        {"key": "app", "operator": "In", "values": ["expr"]}]}), budget("expr", maxUnavailable=1)),
     f"w2: Deployment {PLANTED}/expr to 0 ready"),
], ids=["co-located", "statefulset-quorum-on-two-nodes", "matchexpressions-selector"])
def test_wl004_names_a_workload_one_node_loss_takes_down(lab: Lab, tmp_path: Path, objects: tuple[dict, ...],
                                                        cause: str) -> None:
    """Workloads nobody listed as critical, planted the ways the fleet benchmark plants them."""
    assert_breaks(lab, tmp_path, "WL-004", lambda: planted(lab, PLANTED, *objects), cause)


@contextmanager
def one_zone_workload(lab: Lab) -> Iterator[None]:
    """w1 and w2 in zone-a, w3 in zone-b, and a Deployment of two, one per node (required
    anti-affinity) but both in zone-a: no node loss hurts it, the loss of zone-a does."""
    core = client.CoreV1Api(lab.api())
    zones = {"w1": "zone-a", "w2": "zone-a", "w3": "zone-b"}
    pod = {"nodeSelector": {ZONE: "zone-a"}, "affinity": {"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "zoned"}}}]}}}
    try:
        for node, zone in zones.items():
            core.patch_node(node, {"metadata": {"labels": {ZONE: zone}}})
        with planted(lab, ZONED, workload("Deployment", "zoned", 2, pod), budget("zoned", maxUnavailable=1)):
            yield
    finally:
        for node in zones:
            core.patch_node(node, {"metadata": {"labels": {ZONE: None}}})


def test_wl004_sees_a_workload_that_one_zone_loss_takes_down(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "WL-004", lambda: one_zone_workload(lab),
                  f"zone zone-a: Deployment {ZONED}/zoned to 0 ready")


def test_wl007_sees_that_no_node_left_has_room_for_a_lost_nodes_pod(lab: Lab, tmp_path: Path) -> None:
    """One 10-CPU replica on each 16-CPU worker, placed by the real scheduler (required
    anti-affinity): each worker's loss strands its replica, with 6 CPU left on every other."""
    pod = {"containers": [{**PAUSE, "resources": {"requests": {"cpu": "10", "memory": "1Gi"}}}],
           "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
               {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "hog"}}}]}}}
    assert_breaks(lab, tmp_path, "WL-007", lambda: planted(lab, PLANTED, workload("Deployment", "hog", 3, pod)),
                  f"recreated pods find no node with room ({PLANTED}/hog-")   # w1 may run others, CoreDNS's
