"""Workload checks fail on a lab broken in exactly their way, and pass once restored."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from breaking import assert_breaks, stopped
from kubernetes import client

from hakit import wait
from hakit.lab import Lab
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


ZONED = "hakit-zone-test"


@contextmanager
def one_zone_workload(lab: Lab) -> Iterator[None]:
    """w1 and w2 in zone-a, w3 in zone-b, and a Deployment of two, one per node (required
    anti-affinity) but both in zone-a: no node loss hurts it, the loss of zone-a does."""
    core, apps, policy = client.CoreV1Api(lab.api()), client.AppsV1Api(lab.api()), client.PolicyV1Api(lab.api())
    zones = {"w1": "zone-a", "w2": "zone-a", "w3": "zone-b"}
    core.create_namespace({"metadata": {"name": ZONED}})
    try:
        for node, zone in zones.items():
            core.patch_node(node, {"metadata": {"labels": {ZONE: zone}}})
        apps.create_namespaced_deployment(ZONED, {"metadata": {"name": "zoned"}, "spec": {
            "replicas": 2, "selector": {"matchLabels": {"app": "zoned"}},
            "template": {"metadata": {"labels": {"app": "zoned"}}, "spec": {
                "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}],
                "nodeSelector": {ZONE: "zone-a"},
                "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "zoned"}}}]}}}}}})
        policy.create_namespaced_pod_disruption_budget(ZONED, {"metadata": {"name": "zoned"}, "spec": {
            "maxUnavailable": 1, "selector": {"matchLabels": {"app": "zoned"}}}})
        wait.until(lambda: apps.read_namespaced_deployment("zoned", ZONED).status.ready_replicas == 2, 60,
                   "the zoned Deployment ready")
        yield
    finally:
        for node in zones:
            core.patch_node(node, {"metadata": {"labels": {ZONE: None}}})
        core.delete_namespace(ZONED)
        wait.until(lambda: ZONED not in {n.metadata.name for n in core.list_namespace().items}, 120,
                   f"namespace {ZONED} to be gone")


def test_wl004_sees_a_workload_that_one_zone_loss_takes_down(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "WL-004", lambda: one_zone_workload(lab),
                  f"zone zone-a: Deployment {ZONED}/zoned to 0 ready")
