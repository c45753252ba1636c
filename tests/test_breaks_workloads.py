"""Workload checks fail on a lab broken in exactly their way, and pass once restored."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from breaking import assert_breaks, stopped
from kubernetes import client

from hakit.lab import Lab

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
