"""One Kubernetes API client per kubeconfig, with errors turned into hakit's."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import tenacity
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.config.config_exception import ConfigException

from hakit import wait
from hakit.errors import ConfigError


class _Sent:
    """How many API calls this process's Kubernetes clients have sent, every client and thread
    (a count kept by the clients' own HTTP pools, so no caller can forget to count). A
    connection-level retry of one call (urllib3's, at most one) is not counted again."""

    def __init__(self) -> None:
        self.n, self._lock = 0, threading.Lock()

    def counted(self, urlopen: Any) -> Any:
        def counting(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.n += 1
            return urlopen(*args, **kwargs)
        return counting


SENT = _Sent()


def matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A metav1.LabelSelector against labels: None matches nothing, {} everything."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False   # unknown operator: the API server would have refused it; match nothing
    return True


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
    pool = api.rest_client.pool_manager
    pool.connection_pool_kw["timeout"] = timeout
    pool.urlopen = SENT.counted(pool.urlopen)
    return api


def evict(core: client.CoreV1Api, pod: client.V1Pod, deadline: float) -> int:
    """Evict through the eviction API as `kubectl drain` does, retrying every second while a PDB
    answers 429 until `deadline` (time.monotonic()), then raising that 429; returns how many
    times it was refused. A pod already gone (404), or whose namespace is being deleted (403:
    the API refuses new content there, and the pod goes with it), needs no eviction."""
    body = {"apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": pod.metadata.name, "namespace": pod.metadata.namespace}}
    refused_by_pdb = tenacity.retry_if_exception(lambda e: isinstance(e, ApiException) and e.status == 429)
    retrying = tenacity.Retrying(retry=refused_by_pdb, wait=tenacity.wait_fixed(1), reraise=True,
                                 stop=lambda state: time.monotonic() > deadline)
    for attempt in retrying:
        with attempt:
            try:
                core.create_namespaced_pod_eviction(pod.metadata.name, pod.metadata.namespace, body)
            except ApiException as e:
                if not (e.status == 404 or (e.status == 403 and "being terminated" in str(e.body or ""))):
                    raise
    return retrying.statistics["attempt_number"] - 1


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


def deployment_of(apps: client.AppsV1Api, pod: client.V1Pod) -> tuple[str, str] | None:
    """(namespace, name) of the Deployment a pod belongs to (through its ReplicaSet), if any."""
    rs = next((o.name for o in pod.metadata.owner_references or [] if o.kind == "ReplicaSet"), None)
    if rs is None:
        return None
    try:
        owner = apps.read_namespaced_replica_set(rs, pod.metadata.namespace, _request_timeout=10).metadata
    except ApiException:
        return None
    dep = next((o.name for o in owner.owner_references or [] if o.kind == "Deployment"), None)
    return (pod.metadata.namespace, dep) if dep else None


def rebalance(api: client.ApiClient, deployments: set[tuple[str, str]], timeout: float = 180) -> list[str]:
    """After a drain, put back the spread it took away: a Deployment of ≥ 2 replicas now all on
    one node (its evicted pods landed beside the others while the node was cordoned) is
    restarted as `kubectl rollout restart` does, and awaited. Returns what was restarted."""
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    restarted = []
    for ns, name in sorted(deployments):
        try:
            dep = apps.read_namespaced_deployment(name, ns, _request_timeout=10)
        except ApiException as e:
            if e.status == 404:
                continue   # deleted since (e.g. a probe namespace that was terminating): nothing to spread
            raise
        selector = api.sanitize_for_serialization(dep.spec.selector)   # matchExpressions too
        nodes = {p.spec.node_name for p in core.list_namespaced_pod(ns, _request_timeout=10).items
                 if p.spec.node_name and not p.metadata.deletion_timestamp
                 and matches(selector, p.metadata.labels or {})}
        if (dep.spec.replicas or 0) < 2 or len(nodes) != 1:
            continue
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        apps.patch_namespaced_deployment(name, ns, {"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": stamp}}}}})
        restarted.append(f"{ns}/{name}")
    deadline = time.monotonic() + timeout
    for key in restarted:
        ns, name = key.split("/")

        def rolled_out(ns: str = ns, name: str = name) -> bool:
            d = apps.read_namespaced_deployment(name, ns, _request_timeout=10)
            st = d.status
            return ((d.metadata.generation or 0) <= (st.observed_generation or 0)
                    and (st.updated_replicas or 0) == d.spec.replicas == (st.ready_replicas or 0)
                    and not st.unavailable_replicas and (st.replicas or 0) == d.spec.replicas)
        try:   # an undo goes on: the next restart is still awaited, what is not rolled out yet stays listed
            wait.until(rolled_out, max(0.0, deadline - time.monotonic()), f"{key} rolled out", interval=1.0)
        except wait.WaitTimeout:
            continue
    return restarted


SUFFIX = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
          "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}
QUANTITY = re.compile(r"([0-9.]+(?:[eE][-+]?[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?")


def quantity(value: object) -> float:
    """A Kubernetes resource quantity ("250m", "64Gi", "1e3", 2) as a number; 0 if unreadable
    (written by whoever wrote the pod: a bad one must not stop the audit)."""
    m = QUANTITY.fullmatch(str(value).strip())
    return float(m.group(1)) * SUFFIX.get(m.group(2) or "", 1) if m else 0.0


def pod_requests(spec: dict[str, Any]) -> tuple[int, int]:
    """(CPU millicores, memory bytes) as the scheduler counts a pod: its containers' requests
    summed, or its largest init container's where that is more, plus its overhead."""
    def of(containers: list[dict[str, Any]]) -> list[tuple[float, float]]:
        return [(quantity(r.get("cpu", 0)), quantity(r.get("memory", 0)))
                for c in containers for r in [(c.get("resources") or {}).get("requests") or {}]]
    main, init = of(spec.get("containers") or []), of(spec.get("initContainers") or [])
    overhead = spec.get("overhead") or {}
    cpu = max(sum(c for c, _ in main), max((c for c, _ in init), default=0)) + quantity(overhead.get("cpu", 0))
    mem = max(sum(m for _, m in main), max((m for _, m in init), default=0)) + quantity(overhead.get("memory", 0))
    return round(cpu * 1000), round(mem)
