"""Break the lab so that a property really does not hold, and see the matching
disruptive check fail with a message that names the cause (then pass again)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kubernetes import client

from breaking import assert_breaks, file_changed, stopped
from hakit import wait
from hakit.lab import Lab
from test_breaks_etcd import member_removed

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("settled")]


def test_vip_d01_fails_when_only_the_holder_runs_keepalived(lab: Lab, tmp_path: Path) -> None:
    [holder] = lab.vip_holders()
    others = [f"{h.name}/keepalived" for h in lab.control_planes if h.name != holder]
    assert_breaks(lab, tmp_path, "VIP-D01", lambda: stopped(lab, *others),
                  "no other host runs keepalived to take the VIP", disruptive=True)


def test_vip_d02_fails_when_the_track_script_ignores_haproxy(lab: Lab, tmp_path: Path) -> None:
    [holder] = lab.vip_holders()
    script = lab.paths.etc(holder, "keepalived", "check_apiserver.sh")
    assert_breaks(lab, tmp_path, "VIP-D02", lambda: file_changed(script, lambda _: "#!/bin/sh\nexit 0\n"),
                  "track script did not fail when haproxy stopped", within=180, disruptive=True)


def test_etcd_d01_fails_on_a_two_member_etcd(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "ETCD-D01", lambda: member_removed(lab, "cp3"),
                  "2 of 2 voting etcd members are healthy; one fewer loses quorum", within=60, disruptive=True)


@contextmanager
def single_replica_on(api: client.ApiClient, node: str) -> Iterator[None]:
    """CoreDNS (a critical workload of the lab's inventory) cut to one replica, on `node`."""
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)

    def placed() -> list[str]:
        return sorted(p.spec.node_name for p in core.list_namespaced_pod("kube-system", label_selector="k8s-app=kube-dns")
                      .items if p.status.phase == "Running" and not p.metadata.deletion_timestamp)
    apps.patch_namespaced_deployment("coredns", "kube-system", {"spec": {"replicas": 1, "template": {"spec": {
        "nodeSelector": {"kubernetes.io/hostname": node}}}}})
    try:
        wait.until(lambda: placed() == [node], 90, f"one CoreDNS pod, on {node}")
        yield
    finally:
        apps.patch_namespaced_deployment("coredns", "kube-system", {"spec": {"replicas": 2, "template": {"spec": {
            "nodeSelector": None}}}})
        wait.until(lambda: len(placed()) == 2, 90, "two CoreDNS pods again")


def test_wl_d01_fails_when_a_critical_workload_has_one_replica(lab: Lab, api: client.ApiClient,
                                                               tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "WL-D01", lambda: single_replica_on(api, "w3"),
                  "PDB kube-system/coredns: 1 of its pods on this node, 0 disruption(s) allowed", within=90,
                  disruptive=True)
