"""The inventory: one YAML file that describes a cluster to audit.

Validation reports every problem with its field path and what was expected,
so a user fixes a file in one go rather than one error per run. The model and parse()
stay in one module (a little over 300 lines): each field's default, type and rule sit
beside each other, which is what a reader of the schema needs.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from hakit import paths
from hakit.errors import ConfigError
from hakit.validate import CLUSTER_NAME, HOST_PATH, IMAGE, NAME, PROGRAM, USER, Reader

SCHEMA_VERSION = 1
IN_CLUSTER = Path("in-cluster")   # cluster.kubeconfig: use the pod's service-account token

@dataclass(frozen=True)
class Slo:
    """What the failovers must achieve (`slo:` in the inventory; defaults shown)."""

    vip_failover_seconds: float = 10.0
    etcd_leader_election_seconds: float = 5.0
    controller_failover_seconds: float = 30.0
    # A lost node's pods go after the controller-manager's node-monitor-grace-period (50 s by
    # default since Kubernetes 1.32) and the probe's 5 s toleration, then are scheduled and start.
    pod_rescheduling_seconds: float = 90.0
    # A lost node pages only after the controller-manager's node-monitor-grace-period (50 s by
    # default), hakit's rules' for: (60 s), a scrape and an evaluation, and group_wait: ~130 s.
    alert_delivery_seconds: float = 180.0
    backup_max_age_hours: float = 24.0


@dataclass(frozen=True)
class Thresholds:
    """Limits of the read-only checks (`thresholds:` in the inventory; defaults shown)."""

    etcd_db_quota_share: float = 0.8     # db size may use at most this share of its quota
    clock_skew_seconds: float = 1.0
    cert_min_days: float = 30.0
    lease_slack_seconds: float = 5.0     # renewals may lag the lease duration by this much
# What names, users and paths may look like: everything here can end up in a command line,
# a config file or a file name, so nothing a shell or a config parser reads specially.
DISRUPTIVE_CHECKS = ("vip-failover", "etcd-quorum", "control-plane-failover", "pod-rescheduling", "alert-delivery")
# Where a kubeadm host keeps things; "{host}" expands to the host's name.
DEFAULT_HOST_PATHS = {
    "pki": "/etc/kubernetes/pki",
    "kubeconfigs": "/etc/kubernetes",   # admin.conf, scheduler.conf, kubelet.conf, ...
    "keepalived_conf": "/etc/keepalived/keepalived.conf",
    "keepalived_check": "/etc/keepalived/check_apiserver.sh",
    "haproxy_cfg": "/etc/haproxy/haproxy.cfg",
    "haproxy_socket": "/run/haproxy/admin.sock",
    "etcd_data": "/var/lib/etcd",
    "etcdutl": "etcdutl",           # the program, on the hosts: etcd-restore-snapshot runs it there
}


@dataclass(frozen=True)
class Host:
    name: str
    address: str


@dataclass(frozen=True)
class SSH:
    user: str = "root"
    key: str | None = None
    port: int = 22
    config: str | None = None


@dataclass(frozen=True)
class Etcd:
    endpoints: list[str] | str = "discover"
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    backup_dir: str | None = None


@dataclass(frozen=True)
class Scope:
    """Which namespaces and objects the fleet checks look at (inventory `workloads.scope`)."""
    include_namespaces: tuple[str, ...] = ()      # empty: every namespace
    exclude_namespaces: tuple[str, ...] = ()
    exclude_labels: tuple[tuple[str, str], ...] = ()   # a workload carrying any of these is skipped

    def wants(self, namespace: str, labels: dict[str, str]) -> bool:
        if self.include_namespaces and namespace not in self.include_namespaces:
            return False
        if namespace in self.exclude_namespaces:
            return False
        return not any(labels.get(k) == v for k, v in self.exclude_labels)


@dataclass(frozen=True)
class CriticalWorkload:
    namespace: str
    name: str
    kind: str = "Deployment"


@dataclass(frozen=True)
class Inventory:
    source: Path
    name: str
    kubeconfig: Path
    context: str | None
    vip: str
    port: int
    apiserver_port: int
    haproxy_stats: str | None
    control_plane: list[Host]
    workers: list[Host]          # optional: worker hosts to reach over SSH (provisioning, node faults)
    monitoring_hosts: list[Host]  # optional: where Prometheus and Alertmanager run (provision-monitoring)
    ssh: SSH | None
    ansible_inventory: str | None
    ansible_group: str
    host_paths: dict[str, str]
    etcd: Etcd
    prometheus_url: str | None
    alertmanager_url: str | None
    receiver_url: str | None    # a test receiver's GET /notifications (hakit.lab.pager), to time delivery
    alertmanager_peers: int | None   # how many clustered Alertmanagers there should be
    slo: Slo
    thresholds: Thresholds
    critical_workloads: list[CriticalWorkload]
    workload_scope: Scope        # which workloads the cluster-wide checks (WL-004..008) look at
    disruptive_allowed: list[str]
    fault_journal: Path
    fault_control: str | None   # command template that acts on a component; None: kubeadm's systemd/static pods
    probe_image: str | None     # the disruptive probe pods' image; None: a pause image the workers already hold

    def host_path(self, what: str, host: str) -> str:
        return self.host_paths[what].replace("{host}", host)

    @property
    def vip_url(self) -> str:
        return f"https://{self.vip}:{self.port}"


class _Reader(Reader):
    """The inventory's reader: hosts and their uniqueness besides the generic fields."""

    def __init__(self, doc: dict[str, Any], base: Path) -> None:
        super().__init__(doc, base)
        self.placed: list[tuple[str, Host]] = []   # every valid host with its field path

    def hosts(self, path: str, required: bool) -> list[Host]:
        out = []
        for i, h in enumerate(self.get(path, list, ... if required else [], expect="a list of {name, address}") or []):
            if not isinstance(h, dict) or not isinstance(h.get("name"), str) or not isinstance(h.get("address"), str):
                self.errors.append(f"{path}[{i}]: expected a mapping with string name and address")
                continue
            if self.match(f"{path}[{i}].name", h["name"], NAME, "a host name (lowercase letters, digits, '.', '-')") \
                    & self.ip(f"{path}[{i}].address", h["address"]):
                out.append(Host(h["name"], str(ipaddress.ip_address(h["address"]))))
                self.placed.append((f"{path}[{i}]", out[-1]))
        return out

    def unique(self, vip: str | None, endpoints: list[Any]) -> None:
        """Each host once, by name and by address (two entries for one host make every host
        check read it twice and count it as two), each etcd endpoint once, and a VIP no host
        has as its own address: each clash is one line naming both entries."""
        for attr in ("name", "address"):
            first: dict[str, str] = {}
            for where, host in self.placed:
                value = getattr(host, attr)
                if value in first:
                    self.errors.append(f"{where}.{attr}: {value} is also {first[value]}.{attr}; "
                                       "expected each host once")
                first.setdefault(value, where)
            if attr == "address" and vip and vip in first:
                self.errors.append(f"api.vip: {vip} is also {first[vip]}.address; expected an address no host has "
                                   "(keepalived moves it between them)")
        seen: dict[str, int] = {}
        for i, e in enumerate(endpoints):
            key = str(e).rstrip("/").lower()
            if key in seen:
                self.errors.append(f"etcd.endpoints[{i}]: {e} is also etcd.endpoints[{seen[key]}]; "
                                   "expected each member once")
            seen.setdefault(key, i)


def default_path(given: str | Path | None = None) -> Path:
    """The inventory a command means: the one given, else $HAKIT_INVENTORY, else the local lab's."""
    return Path(given or os.environ.get("HAKIT_INVENTORY") or paths.lab_dir() / "inventory.yaml")


def load(path: Path | str, cluster_exists: bool = True) -> Inventory:
    """Read and validate an inventory; ConfigError lists every problem found. Before the
    cluster exists (a runbook that installs it), its kubeconfig may not exist yet."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"inventory {path}: no such file") from None
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"inventory {path}: not readable YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"inventory {path}: expected a mapping at the top level")
    return parse(doc, path, cluster_exists)


SECTIONS = ("version", "cluster", "api", "control_plane", "workers", "access", "etcd", "monitoring", "slo",
            "thresholds", "workloads", "disruptive")


def parse(doc: dict[str, Any], source: Path, cluster_exists: bool = True) -> Inventory:
    r = _Reader(doc, source.parent)
    r.errors += [f"{key}: unknown section; expected one of {', '.join(SECTIONS)}" for key in doc if key not in SECTIONS]
    version = r.get("version", int, SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        r.errors.append(f"version: got {version}; expected {SCHEMA_VERSION}")
    in_pod = bool(os.environ.get("KUBERNETES_SERVICE_HOST"))   # a pod: its service account is the default
    given = r.get("cluster.kubeconfig", str, "in-cluster" if in_pod else ...,
                  expect='a path to a kubeconfig, or "in-cluster"')
    # Before the cluster exists, kubeadm-init is what writes it.
    kubeconfig = IN_CLUSTER if given == "in-cluster" else (
        r.file("cluster.kubeconfig", given) if cluster_exists else r.path(given))
    hosts = r.hosts("control_plane.hosts", required=True)
    workers = r.hosts("workers.hosts", required=False)
    monitors = r.hosts("monitoring.hosts", required=False)
    ssh = None
    if r.get("access.ssh", dict, None) is not None:
        ssh = SSH(user=r.get("access.ssh.user", str, "root"), key=None, port=r.port("access.ssh.port", 22))
        r.match("access.ssh.user", ssh.user, USER, "a user name")
        key, config = (r.file(f"access.ssh.{k}", r.get(f"access.ssh.{k}", str, None)) for k in ("key", "config"))
        ssh = SSH(user=ssh.user, port=ssh.port, key=str(key) if key else None, config=str(config) if config else None)
    ansible = r.get("access.ansible.inventory", str, None)
    r.file("access.ansible.inventory", ansible)
    endpoints = r.get("etcd.endpoints", (str, list), "discover")
    if isinstance(endpoints, str) and endpoints != "discover":
        r.errors.append(f"etcd.endpoints: got {endpoints!r:.60}; expected a list of URLs or \"discover\"")
    for i, e in enumerate(endpoints if isinstance(endpoints, list) else []):
        r.url(f"etcd.endpoints[{i}]", e if isinstance(e, str) else repr(e), ip_host=True)
    tls = {k: r.file(f"etcd.{k}", r.get(f"etcd.{k}", str, None)) for k in ("ca", "cert", "key")}
    etcd = Etcd(endpoints=endpoints, backup_dir=r.get("etcd.backup_dir", str, None), **tls)
    slo = Slo(**{f.name: r.get(f"slo.{f.name}", float, f.default) for f in fields(Slo)})
    thresholds = Thresholds(**{f.name: r.get(f"thresholds.{f.name}", float, f.default) for f in fields(Thresholds)})
    for section, kind in (("slo", Slo), ("thresholds", Thresholds)):
        known = [f.name for f in fields(kind)]
        for key in (r.get(section, dict, {}) or {}):
            if key not in known:
                r.errors.append(f"{section}.{key}: unknown; expected one of {', '.join(known)}")
    workloads = []
    for i, w in enumerate(r.get("workloads.critical", list, []) or []):
        if not isinstance(w, dict) or not {"namespace", "name"} <= set(w):
            r.errors.append(f"workloads.critical[{i}]: expected a mapping with namespace and name")
            continue
        if w.get("kind", "Deployment") not in ("Deployment", "StatefulSet"):
            r.errors.append(f"workloads.critical[{i}].kind: expected Deployment or StatefulSet")
            continue
        if r.match(f"workloads.critical[{i}].namespace", w["namespace"], NAME, "a namespace name") \
                & r.match(f"workloads.critical[{i}].name", w["name"], NAME, "an object name"):
            workloads.append(CriticalWorkload(w["namespace"], w["name"], w.get("kind", "Deployment")))
    scope = Scope(
        include_namespaces=tuple(r.names("workloads.scope.include_namespaces")),
        exclude_namespaces=tuple(r.names("workloads.scope.exclude_namespaces")),
        exclude_labels=tuple((str(k), str(v)) for k, v in
                             (r.get("workloads.scope.exclude_labels", dict, {}) or {}).items()))
    allowed = r.get("disruptive.allowed", list, []) or []
    for name in allowed:
        if name not in DISRUPTIVE_CHECKS:
            r.errors.append(f"disruptive.allowed: unknown {name!r}; expected some of {', '.join(DISRUPTIVE_CHECKS)}")
    control = r.get("disruptive.control", str, None)
    if control is not None and not {"{action}", "{component}"} <= set(re.findall(r"\{\w+\}", control)):
        r.errors.append("disruptive.control: expected a command template with {action} and {component}")
    probe_image = r.get("disruptive.probe_image", str, None)
    if probe_image is not None:
        r.match("disruptive.probe_image", probe_image, IMAGE, "a container image reference")
    name = r.get("cluster.name", str, re.sub(r"[^A-Za-z0-9._-]", "-", source.stem).lstrip("._-") or "cluster")
    journal = Path(os.path.expanduser(r.get("disruptive.journal", str, f"~/.local/state/hakit/faults/{name}.jsonl")))
    host_paths = {**DEFAULT_HOST_PATHS, **(r.get("control_plane.paths", dict, {}) or {})}
    for key, value in host_paths.items():
        if key not in DEFAULT_HOST_PATHS:
            r.errors.append(f"control_plane.paths.{key}: unknown; expected one of {', '.join(DEFAULT_HOST_PATHS)}")
        elif key == "etcdutl":
            r.match(f"control_plane.paths.{key}", value, PROGRAM, "a program name or path")
        else:
            r.match(f"control_plane.paths.{key}", value, HOST_PATH, "an absolute path on the hosts (letters, "
                    "digits, . _ - + / and {host})")
    vip = r.get("api.vip", str, expect="the API VIP address")
    if vip is not None and r.ip("api.vip", vip):
        vip = str(ipaddress.ip_address(vip))
    r.unique(vip, endpoints if isinstance(endpoints, list) else [])
    if name is not None:
        r.match("cluster.name", name, CLUSTER_NAME, "a name of letters, digits, '.', '_', '-'")
    for key in ("prometheus", "alertmanager", "receiver"):
        r.url(f"monitoring.{key}", r.get(f"monitoring.{key}", str, None))
    stats = r.get("api.haproxy_stats", str, None)
    r.url("api.haproxy_stats", stats.replace("{address}", "127.0.0.1") if stats else None)
    inv = Inventory(
        source=source, name=name, kubeconfig=kubeconfig or Path(),
        context=r.get("cluster.context", str, None), vip=vip or "",
        port=r.port("api.port", 6443), apiserver_port=r.port("api.apiserver_port", 6443), haproxy_stats=stats,
        control_plane=hosts, workers=workers, monitoring_hosts=monitors, ssh=ssh, ansible_inventory=ansible,
        ansible_group=r.get("access.ansible.control_plane_group", str, "k8s-master"), host_paths=host_paths,
        etcd=etcd, prometheus_url=r.get("monitoring.prometheus", str, None),
        alertmanager_url=r.get("monitoring.alertmanager", str, None),
        receiver_url=r.get("monitoring.receiver", str, None),
        alertmanager_peers=r.get("monitoring.alertmanager_peers", int, None), slo=slo, thresholds=thresholds,
        critical_workloads=workloads, workload_scope=scope, disruptive_allowed=list(allowed),
        fault_journal=journal if journal.is_absolute() else source.parent / journal, fault_control=control,
        probe_image=probe_image)
    if r.errors:
        raise ConfigError(f"inventory {source}: " + "; ".join(r.errors))
    return inv
