"""The API objects that make the lab look like a kubeadm cluster: RBAC for the
lab's own clients, Node objects for every host (kwok keeps them alive), the
control-plane mirror pods, CoreDNS with its PodDisruptionBudget, and kubeadm's own
record of the cluster (the kubeadm-config ConfigMap)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from hakit.lab import binaries
from hakit.lab.components import Component
from hakit.lab.topology import LB_PORT, SERVICE_CIDR, Host, LabSpec

MIRROR_LABEL = "hakit.io/lab-mirror"
BULK_ZONES = 10


def _create(fn, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
    """Create an object; one that already exists is fine (up may be re-run)."""
    try:
        fn(*args, **kwargs)
    except ApiException as e:
        if e.status != 409:
            raise


def rbac(api: client.ApiClient) -> None:
    rbac_api = client.RbacAuthorizationV1Api(api)
    roles = {
        "hakit:prometheus": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}],
        "hakit:kube-state-metrics": [
            {"apiGroups": [""], "resources": ["nodes", "pods"], "verbs": ["list", "watch"]},
            {"apiGroups": ["apps"], "resources": ["deployments", "replicasets"], "verbs": ["list", "watch"]},
            {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": ["list", "watch"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["list", "watch"]},
        ],
    }
    for name, rules in roles.items():
        _create(rbac_api.create_cluster_role, {"metadata": {"name": name}, "rules": rules})
        _create(rbac_api.create_cluster_role_binding, {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}]})
    # kwok plays every kubelet at once (node status, leases, pod status): it gets cluster-admin.
    _create(rbac_api.create_cluster_role_binding, {
        "metadata": {"name": "hakit:kwok"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "hakit:kwok"}]})


def node_manifest(name: str, address: str | None, control_plane: bool, extra_labels: dict[str, str]) -> dict:
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
              "type": "kwok", **extra_labels}
    spec: dict = {}
    if control_plane:
        labels["node-role.kubernetes.io/control-plane"] = ""
        labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
        spec["taints"] = [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
    resources = {"cpu": "16", "memory": "64Gi", "pods": "110"}
    status: dict = {"allocatable": resources, "capacity": resources,
                    "nodeInfo": {"kubeletVersion": binaries.kubernetes_version(), "operatingSystem": "linux",
                                 "architecture": "amd64", "containerRuntimeVersion": "kwok",
                                 "kernelVersion": "kwok", "osImage": "kwok", "kubeProxyVersion": "",
                                 "bootID": "", "machineID": name, "systemUUID": name}}
    if address:
        status["addresses"] = [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": name}]
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels, "annotations": {"kwok.x-k8s.io/node": "fake"}},
            "spec": spec, "status": status}


def nodes(api: client.ApiClient, spec: LabSpec) -> None:
    core = client.CoreV1Api(api)
    for host in spec.hosts:
        if host.role in ("control-plane", "worker"):
            _create(core.create_node, node_manifest(host.name, host.address, host.is_control_plane, {}))
    bulk = spec.bulk_node_names()
    if bulk:
        def create(i: int, name: str) -> None:   # ten zones, as a fleet spread over failure domains
            labels = {"hakit.io/bulk": "true", "topology.kubernetes.io/zone": f"zone-{i % BULK_ZONES}"}
            _create(core.create_node, node_manifest(name, None, False, labels))

        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(create, range(len(bulk)), bulk))


def mirror_pods(api: client.ApiClient, host: Host, comps: list[Component]) -> None:
    """kube-system pods named and labelled as kubeadm's static pods, carrying the
    components' real command lines, so kubeadm-style discovery works on the lab."""
    core = client.CoreV1Api(api)
    version = binaries.kubernetes_version()
    for comp in comps:
        if comp.name not in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
            continue
        image = "registry.k8s.io/etcd:3.6.8-0" if comp.name == "etcd" else f"registry.k8s.io/{comp.name}:{version}"
        command = [Path(comp.argv[0]).name, *comp.argv[1:]]
        _create(core.create_namespaced_pod, "kube-system", {
            "metadata": {"name": f"{comp.name}-{host.name}", "namespace": "kube-system",
                         "labels": {"component": comp.name, "tier": "control-plane", MIRROR_LABEL: "true"},
                         "annotations": {"kubernetes.io/config.mirror": "hakit-lab",
                                         "kubernetes.io/config.source": "file"}},
            "spec": {"nodeName": host.name, "hostNetwork": True, "priorityClassName": "system-node-critical",
                     "tolerations": [{"operator": "Exists", "effect": "NoExecute"}],
                     "containers": [{"name": comp.name, "image": image, "command": command}]}})


def coredns(api: client.ApiClient) -> None:
    """CoreDNS as kubeadm deploys it, plus the PDB a well-run cluster adds."""
    labels = {"k8s-app": "kube-dns"}
    _create(client.AppsV1Api(api).create_namespaced_deployment, "kube-system", {
        "metadata": {"name": "coredns", "namespace": "kube-system", "labels": labels},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {
                     "priorityClassName": "system-cluster-critical",
                     "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"},
                                     {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
                     "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                         "weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": labels},
                                                            "topologyKey": "kubernetes.io/hostname"}}]}},
                     "containers": [{"name": "coredns", "image": "registry.k8s.io/coredns/coredns:v1.12.1",
                                     "args": ["-conf", "/etc/coredns/Corefile"]}]}}}})
    _create(client.PolicyV1Api(api).create_namespaced_pod_disruption_budget, "kube-system", {
        "metadata": {"name": "coredns", "namespace": "kube-system"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": labels}}})


def kubeadm_config(api: client.ApiClient, spec: LabSpec) -> None:
    """The ConfigMap `kubeadm init` writes: the cluster's own record of its endpoint, which
    in-cluster clients and joining nodes are built from (API-006 reads it)."""
    config = yaml.safe_dump({"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration",
                             "clusterName": "hakit-lab", "kubernetesVersion": binaries.kubernetes_version(),
                             "controlPlaneEndpoint": f"{spec.vip}:{LB_PORT}",
                             "etcd": {"local": {"dataDir": "/var/lib/etcd"}},
                             "networking": {"serviceSubnet": SERVICE_CIDR, "dnsDomain": "cluster.local"}})
    _create(client.CoreV1Api(api).create_namespaced_config_map, "kube-system", {
        "metadata": {"name": "kubeadm-config", "namespace": "kube-system"}, "data": {"ClusterConfiguration": config}})
