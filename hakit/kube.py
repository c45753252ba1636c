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
