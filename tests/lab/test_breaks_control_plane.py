"""Control-plane checks fail on a lab broken in exactly their way, and pass once restored."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kubernetes import client

from breaking import assert_breaks, result, stopped
from hakit import wait
from hakit.lab import binaries
from hakit.lab.netns import Lab

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("settled")]


def test_cp001_sees_a_single_serving_apiserver(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "CP-001", lambda: stopped(lab, "cp2/kube-apiserver", "cp3/kube-apiserver"),
                  "only 1 apiserver(s) serve")


@pytest.mark.parametrize(("check_id", "component"), [("CP-002", "kube-controller-manager"),
                                                     ("CP-003", "kube-scheduler")])
def test_cp002_cp003_see_a_lease_nobody_renews(lab: Lab, tmp_path: Path, check_id: str, component: str) -> None:
    """Every instance stopped: none serves at once; kcm's Lease goes stale after its duration
    (15 s) plus slack, and the scheduler releases its Lease on the way out, so nobody holds it."""
    with stopped(lab, *(f"{h}/{component}" for h in ("cp1", "cp2", "cp3"))):
        failed = wait.until(lambda: (r := result(lab.paths.inventory, tmp_path, check_id))
                            ["outcome"] == "fail" and "Lease" in r["message"] and r,
                            60, f"{check_id} to name the Lease")
        assert f"{component} does not serve on cp1" in failed["message"], failed["message"]
    wait.until(lambda: result(lab.paths.inventory, tmp_path, check_id)["outcome"] == "pass", 120,
               f"{check_id} to pass again")


@pytest.mark.parametrize(("check_id", "component"), [("CP-002", "kube-controller-manager"),
                                                     ("CP-003", "kube-scheduler")])
def test_cp002_cp003_name_a_standby_that_does_not_serve(lab: Lab, tmp_path: Path, check_id: str,
                                                       component: str) -> None:
    """The leader keeps working, so nothing else notices; the next failover has no standby there."""
    from kubernetes import client
    holder = client.CoordinationV1Api(lab.api()).read_namespaced_lease(component, "kube-system").spec.holder_identity
    standby = next(h.name for h in lab.control_planes if not holder.startswith(f"{h.name}_"))
    assert_breaks(lab, tmp_path, check_id, lambda: stopped(lab, f"{standby}/{component}"),
                  f"{component} does not serve on {standby}")


@contextmanager
def kubelet_reporting(lab: Lab, node: str, version: str) -> Iterator[None]:
    """The node's status says its kubelet is `version` (kwok keeps what the status says), as
    a worker upgraded before the control plane would report it."""
    core = client.CoreV1Api(lab.api())
    before = core.read_node(node).status.node_info.kubelet_version
    core.patch_node_status(node, {"status": {"nodeInfo": {"kubeletVersion": version}}})
    try:
        yield
    finally:
        core.patch_node_status(node, {"status": {"nodeInfo": {"kubeletVersion": before}}})


def test_cp004_names_a_kubelet_newer_than_the_apiservers(lab: Lab, tmp_path: Path) -> None:
    current = binaries.kubernetes_version()
    major, minor = (int(x) for x in current.lstrip("v").split(".")[:2])
    newer = f"v{major}.{minor + 1}.0"
    assert_breaks(lab, tmp_path, "CP-004", lambda: kubelet_reporting(lab, "w2", newer),
                  f"kubelet on w2 is {newer}, newer than the oldest apiserver ({current})")
