"""The lab's shape: which hosts exist, their addresses and what runs on each.

Pure data, derived from a few numbers, so every other lab module (and the
tests) agree on names and addresses without asking the running lab.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

CONTROL_PLANE = "control-plane"
WORKER = "worker"
MONITORING = "monitoring"
ALERTING = "alerting"       # a second Alertmanager, clustered with the monitoring host's
BULK = "bulk"

# Ports, as a kubeadm HA cluster with the kubeadm HA guide's load balancer uses them.
SERVICE_CIDR = "10.96.0.0/12"   # the Services' range, as kubeadm's default
APISERVER_PORT = 6443
LB_PORT = 8443
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
ETCD_METRICS_PORT = 2381
KCM_PORT = 10257
SCHEDULER_PORT = 10259
HAPROXY_STATS_PORT = 8404
SSH_PORT = 22
PROMETHEUS_PORT = 9090
ALERTMANAGER_PORT = 9093
ALERTMANAGER_CLUSTER_PORT = 9094
PAGER_PORT = 9095
PUSHGATEWAY_PORT = 9091
KSM_PORT = 8080


@dataclass(frozen=True)
class Host:
    """One lab host: a network namespace with one address on the lab bridge."""

    name: str
    role: str
    address: str
    netns: str
    veth: str  # root-side end of the host's veth pair; the inside end is eth0

    @property
    def is_control_plane(self) -> bool:
        return self.role == CONTROL_PLANE

    def components(self) -> list[str]:
        """What runs on this host, in start order."""
        if self.role == CONTROL_PLANE:
            return ["sshd", "etcd", "kube-apiserver", "haproxy", "keepalived",
                    "kube-controller-manager", "kube-scheduler", "kwok"]
        if self.role == MONITORING:
            return ["sshd", "pager", "alertmanager", "pushgateway", "prometheus", "kube-state-metrics"]
        if self.role == ALERTING:
            return ["sshd", "alertmanager"]
        if self.role == WORKER:
            return ["sshd", "kwok"]   # hakit reaches a node over SSH to stop its "kubelet"
        return ["kwok"]


@dataclass(frozen=True)
class LabSpec:
    """Everything that decides the lab's topology; stored in the state file."""

    subnet: str = "172.31.250.0/24"
    prefix: str = "hakit"
    control_planes: int = 3
    workers: int = 3
    bulk_nodes: int = 0
    hosts: tuple[Host, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.control_planes < 1 or self.workers < 0 or self.bulk_nodes < 0:
            raise ValueError("counts must be positive")
        net = ipaddress.ip_network(self.subnet)
        if net.prefixlen != 24:
            raise ValueError(f"subnet {self.subnet} must be a /24")
        base = net.network_address
        hosts = [self._host(f"cp{i}", CONTROL_PLANE, base + 10 + i) for i in range(1, self.control_planes + 1)]
        hosts += [self._host(f"w{i}", WORKER, base + 20 + i) for i in range(1, self.workers + 1)]
        if self.bulk_nodes:
            hosts.append(self._host("bulk", BULK, base + 30))
        hosts.append(self._host("mon", MONITORING, base + 40))
        hosts.append(self._host("am2", ALERTING, base + 41))
        object.__setattr__(self, "hosts", tuple(hosts))

    def _host(self, name: str, role: str, addr: ipaddress.IPv4Address) -> Host:
        return Host(name=name, role=role, address=str(addr),
                    netns=f"{self.prefix}-{name}", veth=f"{self.prefix[:6]}-{name}")

    @property
    def bridge(self) -> str:
        return f"{self.prefix[:8]}br0"

    @property
    def gateway(self) -> str:
        """The root namespace's address on the bridge: where the CLI and pytest sit."""
        return str(ipaddress.ip_network(self.subnet).network_address + 1)

    @property
    def vip(self) -> str:
        return str(ipaddress.ip_network(self.subnet).network_address + 100)

    @property
    def control_plane_hosts(self) -> list[Host]:
        return [h for h in self.hosts if h.role == CONTROL_PLANE]

    @property
    def worker_hosts(self) -> list[Host]:
        return [h for h in self.hosts if h.role == WORKER]

    @property
    def monitoring_host(self) -> Host:
        return next(h for h in self.hosts if h.role == MONITORING)

    @property
    def alertmanager_hosts(self) -> list[Host]:
        """Where the clustered Alertmanagers run: the monitoring host first."""
        return [h for h in self.hosts if "alertmanager" in h.components()]

    def host(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(f"no lab host named {name!r}; hosts: {', '.join(h.name for h in self.hosts)}")

    def bulk_node_names(self) -> list[str]:
        return [f"bulk-{i:05d}" for i in range(1, self.bulk_nodes + 1)]

    def to_dict(self) -> dict[str, object]:
        return {"subnet": self.subnet, "prefix": self.prefix, "control_planes": self.control_planes,
                "workers": self.workers, "bulk_nodes": self.bulk_nodes}
