"""The lab is a real HA control plane: each property here is measured on it."""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest
from kubernetes import client

from hakit import inventory, wait
from hakit.etcd import EtcdClient
from hakit.lab import binaries, pager
from hakit.lab.netns import Lab
from hakit.snapshot import is_ready

pytestmark = pytest.mark.lab


def etcd_client(lab: Lab) -> tuple[EtcdClient, list[str]]:
    inv = inventory.load(lab.paths.inventory)
    return EtcdClient(inv.etcd.endpoints, inv.etcd.ca, inv.etcd.cert, inv.etcd.key), list(inv.etcd.endpoints)


def test_etcd_has_three_healthy_members_and_one_leader(lab: Lab) -> None:
    etcd, endpoints = etcd_client(lab)
    statuses = [etcd.status(ep) for ep in endpoints]
    assert len(etcd.members()) == 3
    assert all(etcd.health(ep)[0] for ep in endpoints)
    assert sum(s.is_leader for s in statuses) == 1
    assert len({s.cluster_id for s in statuses}) == 1
    assert {s.version for s in statuses} == {"3.6.8"}


def test_nodes_through_the_vip_are_kubeadm_shaped_and_ready(lab: Lab, api: client.ApiClient) -> None:
    assert api.configuration.host == f"https://{lab.spec.vip}:8443"

    def ready_nodes() -> list[client.V1Node]:
        nodes = client.CoreV1Api(api).list_node().items
        ready = [n for n in nodes if is_ready(n)]
        return ready if len(ready) == len(nodes) >= 6 else []

    nodes = wait.until(ready_nodes, 60, "every node Ready")
    cps = [n for n in nodes if "node-role.kubernetes.io/control-plane" in n.metadata.labels]
    assert len(cps) == 3 and all(any(t.key == "node-role.kubernetes.io/control-plane" for t in n.spec.taints)
                                 for n in cps)
    assert len(nodes) - len(cps) >= 3
    assert {n.status.node_info.kubelet_version for n in nodes} == {binaries.kubernetes_version()}


def test_control_plane_mirror_pods_carry_real_command_lines(api: client.ApiClient, lab: Lab) -> None:
    pods = client.CoreV1Api(api).list_namespaced_pod("kube-system", label_selector="component=etcd").items
    assert sorted(p.spec.node_name for p in pods) == ["cp1", "cp2", "cp3"]
    for pod in pods:
        command = pod.spec.containers[0].command
        host = lab.spec.host(pod.spec.node_name)
        assert command[0] == "etcd"
        assert f"--advertise-client-urls=https://{host.address}:2379" in command


def test_a_deployment_spreads_over_the_workers_and_runs(api: client.ApiClient) -> None:
    ns = f"hakit-test-{uuid.uuid4().hex[:6]}"
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespace({"metadata": {"name": ns}})
    try:
        labels = {"app": "spread"}
        apps.create_namespaced_deployment(ns, {
            "metadata": {"name": "spread"},
            "spec": {"replicas": 3, "selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels},
                "spec": {"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                                        "whenUnsatisfiable": "DoNotSchedule",
                                                        "labelSelector": {"matchLabels": labels}}],
                         "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}}})

        def running() -> list[client.V1Pod]:
            pods = core.list_namespaced_pod(ns).items
            return pods if len(pods) == 3 and all(p.status.phase == "Running" for p in pods) else []

        pods = wait.until(running, 60, "3 replicas Running")
        assert len({p.spec.node_name for p in pods}) == 3
        assert all(p.spec.node_name.startswith("w") for p in pods)
    finally:
        core.delete_namespace(ns)


def test_exactly_one_host_holds_the_vip(lab: Lab) -> None:
    assert len(lab.vip_holders()) == 1


def test_controller_manager_and_scheduler_leases_are_held_and_renewed(api: client.ApiClient) -> None:
    coord = client.CoordinationV1Api(api)
    for name in ("kube-controller-manager", "kube-scheduler"):
        lease = wait.until(lambda name=name: (held := coord.read_namespaced_lease(name, "kube-system"))
                           .spec.holder_identity and held,
                           30, f"{name} lease held")
        holder_host = lease.spec.holder_identity.split("_")[0]
        assert holder_host in ("cp1", "cp2", "cp3")
        age = time.time() - lease.spec.renew_time.timestamp()
        assert age < lease.spec.lease_duration_seconds


def test_prometheus_scrapes_every_target(lab: Lab) -> None:
    from hakit.http import session
    url = f"http://{lab.spec.monitoring_host.address}:9090/api/v1/targets"

    def all_up() -> list[dict]:
        targets = session().get(url, timeout=5).json()["data"]["activeTargets"]
        return targets if targets and all(t["health"] == "up" for t in targets) else []

    targets = wait.until(all_up, 60, "every Prometheus target up",
                         why=lambda: str([(t["scrapeUrl"], t["lastError"]) for t in session().get(url).json()
                                          ["data"]["activeTargets"] if t["health"] != "up"]))
    jobs = {t["labels"]["job"] for t in targets}
    assert jobs == {"etcd", "apiserver", "kube-controller-manager", "kube-scheduler", "haproxy",
                    "kube-state-metrics", "pushgateway"}
    assert len(targets) == 3 * 5 + 2


def test_the_pager_received_the_watchdog(lab: Lab) -> None:
    def watchdog() -> bool:
        return any(a["labels"].get("alertname") == "Watchdog"
                   for n in pager.read(lab.paths.pager_file) for a in n.get("alerts", []))

    wait.until(watchdog, 90, "the Watchdog notification at the pager")


def test_kubectl_apply_works_against_the_vip(lab: Lab, tmp_path) -> None:  # type: ignore[no-untyped-def]
    manifest = tmp_path / "cm.yaml"
    name = f"hakit-apply-{uuid.uuid4().hex[:6]}"
    manifest.write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: default\n"
                        "data:\n  proof: apply\n")
    env = {"KUBECONFIG": str(lab.paths.admin_kubeconfig), "PATH": "/usr/bin:/bin"}
    kubectl = binaries.path("kubectl")
    out = subprocess.run([kubectl, "apply", "-f", str(manifest)], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    got = subprocess.run([kubectl, "get", "configmap", name, "-o", "json"], capture_output=True, text=True, env=env)
    assert json.loads(got.stdout)["data"] == {"proof": "apply"}
    subprocess.run([kubectl, "delete", "configmap", name], capture_output=True, env=env)


def test_hosts_answer_over_ssh_with_their_own_identity(lab: Lab) -> None:
    import testinfra
    for cp in lab.control_planes:
        host = testinfra.get_host(f"ssh://root@{cp.address}", ssh_config=str(lab.paths.ssh_config))
        assert host.check_output("hostname") == cp.name
        assert host.interface("eth0").addresses[0] == cp.address


def test_status_reports_real_health_not_just_a_live_process(lab: Lab) -> None:
    """etcd stopped on one host shows as DOWN there, and the lab says so until restarted."""
    cp3 = lab.host("cp3")
    cp3.stop("etcd")
    try:
        # the apiserver on cp3 talks only to its local etcd, as kubeadm's stacked layout does
        wait.until(lambda: not _healthy(lab, "cp3", "kube-apiserver"), 30, "cp3 apiserver to turn unready")
        assert not _healthy(lab, "cp3", "etcd")
        assert _healthy(lab, "cp1", "etcd")
    finally:
        cp3.start("etcd")
    wait.until(lambda: _healthy(lab, "cp3", "etcd") and _healthy(lab, "cp3", "kube-apiserver"), 60,
               "cp3 etcd and apiserver healthy again")


def _healthy(lab: Lab, host: str, component: str) -> bool:
    return next(s.healthy for s in lab.status() if s.host == host and s.component == component)
