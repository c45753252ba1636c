"""One Kubernetes API client per kubeconfig, with errors turned into hakit's."""

from __future__ import annotations

import time
from pathlib import Path

from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.config.config_exception import ConfigException

from hakit.errors import ConfigError


def api_client(kubeconfig: Path | str, context: str | None = None, timeout: float = 10.0) -> client.ApiClient:
    """A client for the kubeconfig; bad or missing files raise ConfigError, one line."""
    cfg = client.Configuration()
    if str(kubeconfig) != "in-cluster" and not Path(kubeconfig).is_file():
        raise ConfigError(f"kubeconfig {kubeconfig} does not exist (a cluster being installed gets it from "
                          "the kubeadm-init runbook)")
    try:
        if str(kubeconfig) == "in-cluster":   # inventory.IN_CLUSTER: the pod's service account
            config.load_incluster_config(client_configuration=cfg)
        else:
            config.load_kube_config(config_file=str(kubeconfig), context=context, client_configuration=cfg)
    except (ConfigException, OSError, TypeError, ValueError) as e:
        raise ConfigError(f"kubeconfig {kubeconfig}: {str(e).splitlines()[0]}") from None
    cfg.retries = 1
    api = client.ApiClient(cfg)
    api.rest_client.pool_manager.connection_pool_kw["timeout"] = timeout
    return api


def evict(core: client.CoreV1Api, pod: client.V1Pod, deadline: float) -> int:
    """Evict through the eviction API as `kubectl drain` does, retrying while a PDB answers
    429 until `deadline` (time.monotonic()); returns how many times it was refused."""
    refused = 0
    body = {"apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": pod.metadata.name, "namespace": pod.metadata.namespace}}
    while True:
        try:
            core.create_namespaced_pod_eviction(pod.metadata.name, pod.metadata.namespace, body)
            return refused
        except ApiException as e:
            if e.status == 404:
                return refused
            if e.status != 429 or time.monotonic() > deadline:
                raise
            refused += 1
            time.sleep(1)


MIRROR = "kubernetes.io/config.mirror"


def drain_plan(pods: list[client.V1Pod], force: bool = False,
               delete_emptydir_data: bool = False) -> tuple[list[client.V1Pod], list[str]]:
    """What `kubectl drain --ignore-daemonsets` does with a node's pods: (the pods it evicts,
    why it refuses to). Mirror pods (static pods) and DaemonSet pods stay; a pod no controller
    would recreate is refused unless force (evicting it loses it for good); a pod with emptyDir
    data is refused unless delete_emptydir_data (the data is lost)."""
    evict, refused = [], []
    for p in pods:
        if p.metadata.deletion_timestamp is not None or MIRROR in (p.metadata.annotations or {}):
            continue
        owners = p.metadata.owner_references or []
        if any(o.kind == "DaemonSet" for o in owners):
            continue
        name = f"{p.metadata.namespace}/{p.metadata.name}"
        finished = p.status is not None and p.status.phase in ("Succeeded", "Failed")
        if not any(o.controller for o in owners) and not force and not finished:
            refused.append(f"{name} has no controller to recreate it (force=yes evicts it for good)")
            continue
        if any(v.empty_dir is not None for v in p.spec.volumes or []) and not delete_emptydir_data and not finished:
            refused.append(f"{name} keeps data in an emptyDir (delete_emptydir_data=yes loses it)")
            continue
        evict.append(p)
    return evict, refused
