"""One Kubernetes API client per kubeconfig, with errors turned into hakit's."""

from __future__ import annotations

from pathlib import Path

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from hakit.errors import ConfigError


def api_client(kubeconfig: Path | str, context: str | None = None, timeout: float = 10.0) -> client.ApiClient:
    """A client for the kubeconfig; bad or missing files raise ConfigError, one line."""
    cfg = client.Configuration()
    try:
        config.load_kube_config(config_file=str(kubeconfig), context=context, client_configuration=cfg)
    except (ConfigException, OSError, TypeError, ValueError) as e:
        raise ConfigError(f"kubeconfig {kubeconfig}: {str(e).splitlines()[0]}") from None
    cfg.retries = 1
    api = client.ApiClient(cfg)
    api.rest_client.pool_manager.connection_pool_kw["timeout"] = timeout
    return api
