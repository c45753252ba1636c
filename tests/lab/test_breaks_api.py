"""API endpoint checks fail on a lab broken in exactly their way, and pass once restored."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from breaking import assert_breaks, file_changed, run_checks, stopped
from hakit.lab.netns import Lab

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("settled")]


def test_api001_vip_without_any_keepalived(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "API-001", lambda: stopped(lab, "cp1/keepalived", "cp2/keepalived", "cp3/keepalived"),
                  "nothing accepts connections there", within=20)


def test_api001_vip_held_with_no_ready_apiserver_behind_it(lab: Lab, tmp_path: Path) -> None:
    """etcd quorum lost: every apiserver answers, none ready; haproxy on the VIP accepts and has
    no backend UP. Blamed on what is behind the VIP, not on the VIP (the incident model's "api")."""
    assert_breaks(lab, tmp_path, "API-001", lambda: stopped(lab, "cp1/etcd", "cp2/etcd"),
                  "haproxy there accepts connections: the apiserver it chose is not ready, or none is UP", within=30)


def test_api002_names_the_apiserver_that_is_down(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "API-002", lambda: stopped(lab, "cp3/kube-apiserver"), "cp3")


def test_api003_names_the_backend_haproxy_sees_down(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "API-003", lambda: stopped(lab, "cp2/kube-apiserver"), "sees cp2 DOWN")


@contextmanager
def second_vip_holder(lab: Lab) -> Iterator[None]:
    other = next(h for h in lab.control_planes if not h.holds_vip)
    other.run("ip", "addr", "add", f"{lab.spec.vip}/24", "dev", "eth0")
    try:
        yield
    finally:
        other.run("ip", "addr", "del", f"{lab.spec.vip}/24", "dev", "eth0")


def test_api004_sees_split_brain(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "API-004", lambda: second_vip_holder(lab), "split brain")


def test_api005_sees_a_virtual_router_id_mismatch(lab: Lab, tmp_path: Path) -> None:
    conf = lab.paths.etc("cp2", "keepalived", "keepalived.conf")
    assert_breaks(lab, tmp_path, "API-005",
                  lambda: file_changed(conf, lambda t: re.sub(r"virtual_router_id \d+", "virtual_router_id 77", t)),
                  "virtual_router_id differs")


def test_api005_names_the_hosts_whose_vrrp_password_differs_but_never_the_password(lab: Lab, tmp_path: Path) -> None:
    conf = lab.paths.etc("cp2", "keepalived", "keepalived.conf")
    secret = "Zq7secrt"
    with file_changed(conf, lambda t: re.sub(r"auth_pass \S+", f"auth_pass {secret}", t)):
        results = tmp_path / "results-API-005.json"
        failed = run_checks(lab.paths.inventory, tmp_path, "API-005")[1]["API-005"]
        assert "auth_pass differs: cp1=group 1, cp2=group 2, cp3=group 1" in failed["message"], failed["message"]
        assert secret not in results.read_text()


def test_api006_sees_a_kubeconfig_pinned_to_one_host(lab: Lab, tmp_path: Path) -> None:
    cp1 = lab.spec.host("cp1").address
    pinned = tmp_path / "pinned.conf"
    pinned.write_text(lab.paths.admin_kubeconfig.read_text().replace(f"https://{lab.spec.vip}:8443",
                                                                     f"https://{cp1}:6443"))
    pinned.chmod(0o600)
    inventory = tmp_path / "inventory.yaml"
    doc = yaml.safe_load(lab.paths.inventory.read_text())

    def use(path: Path) -> None:
        doc["cluster"]["kubeconfig"] = str(path)
        inventory.write_text(yaml.safe_dump(doc))

    use(lab.paths.admin_kubeconfig)

    @contextmanager
    def pinned_kubeconfig() -> Iterator[None]:
        use(pinned)
        try:
            yield
        finally:
            use(lab.paths.admin_kubeconfig)

    assert_breaks(lab, tmp_path, "API-006", pinned_kubeconfig, "is host cp1", inventory=inventory)


def test_api006_sees_a_control_plane_endpoint_pinned_to_one_host(lab: Lab, api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """kubeadm-config says where joining nodes and kube-proxy point: one host there is an
    outage waiting for that host, whatever the admin's kubeconfig says."""
    from kubernetes import client
    core = client.CoreV1Api(api)

    @contextmanager
    def pinned_endpoint() -> Iterator[None]:
        cm = core.read_namespaced_config_map("kubeadm-config", "kube-system")
        original = cm.data["ClusterConfiguration"]
        doc = yaml.safe_load(original)
        doc["controlPlaneEndpoint"] = f"{lab.spec.host('cp1').address}:6443"
        core.patch_namespaced_config_map("kubeadm-config", "kube-system",
                                         {"data": {"ClusterConfiguration": yaml.safe_dump(doc)}})
        try:
            yield
        finally:
            core.patch_namespaced_config_map("kubeadm-config", "kube-system",
                                             {"data": {"ClusterConfiguration": original}})

    assert_breaks(lab, tmp_path, "API-006", pinned_endpoint, "kubeadm controlPlaneEndpoint https://")
