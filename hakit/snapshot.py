"""A read-only view of the cluster built from one paginated LIST per resource
kind, shared by every check in a run: no per-node or per-pod API calls, so an
audit of thousands of nodes stays fast and its memory bounded by what it keeps."""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import urlsplit

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from hakit import listing
from hakit.errors import ConfigError, UnreachableError
from hakit.validate import ip


class Snapshot:
    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)

    @functools.cached_property
    def version(self) -> str:
        try:
            return client.VersionApi(self.api).get_code().git_version
        except (ApiException, HTTPError) as e:
            raise UnreachableError(f"API /version: {type(e).__name__}", ("", "api")) from None

    def facts(self) -> dict[str, object]:
        """What the report's header says about the cluster (from data already listed)."""
        return {"kubernetes_version": self.version, "nodes": len(self.nodes),
                "control_plane_nodes": sum(is_control_plane(n) for n in self.nodes)}

    @functools.cached_property
    def nodes(self) -> list[client.V1Node]:
        return list(listing.items(self.core.list_node))

    @functools.cached_property
    def kube_system_pods(self) -> list[client.V1Pod]:
        return list(listing.items(self.core.list_namespaced_pod, "kube-system"))

    @functools.cached_property
    def kube_system_leases(self) -> dict[str, client.V1Lease]:
        coord = client.CoordinationV1Api(self.api)
        return {lease.metadata.name: lease for lease in listing.items(coord.list_namespaced_lease, "kube-system")}

    def pods(self, namespace: str, selector: str) -> list[client.V1Pod]:
        return list(listing.items(self.core.list_namespaced_pod, namespace, label_selector=selector))

    def workload(self, namespace: str, kind: str, name: str) -> Any | None:
        apps = client.AppsV1Api(self.api)
        read = apps.read_namespaced_deployment if kind == "Deployment" else apps.read_namespaced_stateful_set
        try:
            return read(name, namespace)
        except ApiException as e:
            if e.status == 404:
                return None
            raise UnreachableError(f"API read {kind} {namespace}/{name}: HTTP {e.status}") from None

    def pdbs(self, namespace: str) -> list[client.V1PodDisruptionBudget]:
        return list(listing.items(client.PolicyV1Api(self.api).list_namespaced_pod_disruption_budget, namespace))

    def control_plane_pods(self, component: str) -> list[client.V1Pod]:
        return [p for p in self.kube_system_pods if (p.metadata.labels or {}).get("component") == component]

    def etcd_endpoints(self) -> list[str]:
        """The --advertise-client-urls of the kube-system etcd pods, as kubeadm sets them: how an
        inventory's `etcd.endpoints: discover` is resolved, everywhere. Read from the cluster,
        so each must be a URL with an IP address and a port before it is used."""
        urls = []
        for pod in self.control_plane_pods("etcd"):
            for arg in pod.spec.containers[0].command or []:
                if arg.startswith("--advertise-client-urls="):
                    urls += arg.split("=", 1)[1].split(",")
        client_urls(urls, "etcd pod --advertise-client-urls")
        if not urls:
            raise UnreachableError("etcd endpoints: none set and no kube-system etcd pods to discover them from",
                                   ("", "api"))
        return sorted(set(urls))


def is_ready(obj: client.V1Node | client.V1Pod) -> bool:
    """A node's or a pod's Ready condition is True."""
    return any(c.type == "Ready" and c.status == "True" for c in (obj.status.conditions or []))


def is_control_plane(node: client.V1Node) -> bool:
    return "node-role.kubernetes.io/control-plane" in (node.metadata.labels or {})


def is_schedulable(node: client.V1Node) -> bool:
    taints = node.spec.taints or []
    return not node.spec.unschedulable and not any(t.effect in ("NoSchedule", "NoExecute") for t in taints)


def client_urls(urls: list[str], source: str) -> list[str]:
    """etcd client URLs read from the cluster, each an http(s) URL with an IP address and a
    port, or ConfigError naming where it came from."""
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or parts.port is None:
            raise ConfigError(f"{source}: {url[:60]!r} is not a client URL with a port")
        ip(parts.hostname or "", source)
    return urls
