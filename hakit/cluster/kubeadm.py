"""kubeadm's side of installing a cluster: the configuration files hakit's provisioning
runbooks hand to `kubeadm init` and `kubeadm join`, and what they read back from it.

Everything that reaches a file here is validated first (addresses are IPs, the token and
keys have kubeadm's own shapes), so a config is never a place to smuggle a line in. The
join credentials (token, CA hash, certificate key) are secrets: they live in a 0600 file
on the joining host for the length of the join, never in a journal, log or command line.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from hakit.errors import ConfigError, HakitError
from hakit.inventory import Host

if TYPE_CHECKING:
    from hakit.cluster import Cluster

CRI_SOCKET = "unix:///run/containerd/containerd.sock"
CONFIG = "/etc/kubernetes/hakit-kubeadm.yaml"     # 0600: a join's holds its token
TOKEN = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")
CA_HASH = re.compile(r"^sha256:[a-f0-9]{64}$")
CERT_KEY = re.compile(r"^[a-f0-9]{64}$")
VERSION = re.compile(r"^v\d+\.\d+\.\d+$")

# What a host tells about itself that changes the configuration (probed by host-prepare
# and kubeadm-init, never assumed from the lab):
CGROUP_V1 = '[ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ]'
CONNTRACK_FIXED = "! [ -w /proc/sys/net/netfilter/nf_conntrack_max ]"   # a container, or a hardened host


@dataclass(frozen=True)
class JoinCredentials:
    token: str
    ca_hash: str
    certificate_key: str = ""    # only for a control-plane join

    def __post_init__(self) -> None:
        if not TOKEN.match(self.token) or not CA_HASH.match(self.ca_hash):
            raise HakitError("kubeadm printed a join command hakit does not recognise (token or CA hash)")
        if self.certificate_key and not CERT_KEY.match(self.certificate_key):
            raise HakitError("kubeadm printed a certificate key hakit does not recognise")

    def __repr__(self) -> str:   # never shown whole: they let a machine join the cluster
        return "JoinCredentials(<secret>)"


def parse_join_command(text: str) -> tuple[str, str]:
    """(token, CA hash) from `kubeadm token create --print-join-command`."""
    token = re.search(r"--token\s+(\S+)", text)
    ca_hash = re.search(r"--discovery-token-ca-cert-hash\s+(\S+)", text)
    if not token or not ca_hash:
        raise HakitError("kubeadm token create printed no join command")
    return token.group(1), ca_hash.group(1)


def parse_certificate_key(text: str) -> str:
    """The key `kubeadm init phase upload-certs --upload-certs` prints on its last line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines or not CERT_KEY.match(lines[-1]):
        raise HakitError("kubeadm printed no certificate key after uploading the certificates")
    return lines[-1]


def _ip(value: str) -> str:
    return str(ipaddress.ip_address(value))


def _registration(address: str) -> dict[str, object]:
    return {"criSocket": CRI_SOCKET, "kubeletExtraArgs": [{"name": "node-ip", "value": _ip(address)}]}


# What kube-prometheus-stack asks of a kubeadm cluster so Prometheus can scrape it from
# another host: kubeadm binds these to 127.0.0.1 by default.
METRICS_EXTRA_ARGS = {"etcd": [{"name": "listen-metrics-urls", "value": "http://0.0.0.0:2381"}],
                      "controllerManager": [{"name": "bind-address", "value": "0.0.0.0"}],
                      "scheduler": [{"name": "bind-address", "value": "0.0.0.0"}]}


def init_config(version: str, cluster_name: str, endpoint: tuple[str, int], address: str, sans: list[str],
                pod_subnet: str, service_subnet: str, cgroup_v1: bool, conntrack_fixed: bool,
                expose_metrics: bool = False) -> str:
    """InitConfiguration, ClusterConfiguration (VIP:port as controlPlaneEndpoint, every
    control-plane address in the certificate), KubeletConfiguration (systemd cgroups) and
    KubeProxyConfiguration, as one multi-document YAML. expose_metrics: etcd's, the
    controller-manager's, the scheduler's and kube-proxy's metrics reachable from a
    Prometheus on another host (kcm and scheduler still require a token)."""
    vip, port = endpoint
    kubelet: dict[str, object] = {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
                                  "cgroupDriver": "systemd"}
    if cgroup_v1:   # deprecated, refused by default since 1.35
        kubelet["failCgroupV1"] = False
    proxy: dict[str, object] = {"apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
                                "mode": "iptables"}
    if conntrack_fixed:   # kube-proxy would fail setting a sysctl it may not write
        proxy["conntrack"] = {"maxPerCore": 0}
    if expose_metrics:
        proxy["metricsBindAddress"] = "0.0.0.0:10249"
    cluster: dict[str, object] = {
        "apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration",
        "kubernetesVersion": version, "clusterName": cluster_name,
        "controlPlaneEndpoint": f"{_ip(vip)}:{int(port)}",
        "networking": {"podSubnet": str(ipaddress.ip_network(pod_subnet)),
                       "serviceSubnet": str(ipaddress.ip_network(service_subnet))},
        "apiServer": {"certSANs": [_ip(vip)] + [_ip(a) for a in sans]}}
    if expose_metrics:
        cluster["etcd"] = {"local": {"extraArgs": METRICS_EXTRA_ARGS["etcd"]}}
        cluster["controllerManager"] = {"extraArgs": METRICS_EXTRA_ARGS["controllerManager"]}
        cluster["scheduler"] = {"extraArgs": METRICS_EXTRA_ARGS["scheduler"]}
    docs = [
        {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "InitConfiguration",
         "localAPIEndpoint": {"advertiseAddress": _ip(address), "bindPort": 6443},
         "nodeRegistration": _registration(address)},
        cluster, kubelet, proxy,
    ]
    return yaml.safe_dump_all(docs, sort_keys=False)


def join_config(endpoint: tuple[str, int], address: str, creds: JoinCredentials, control_plane: bool) -> str:
    vip, port = endpoint
    doc: dict[str, object] = {
        "apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "JoinConfiguration",
        "discovery": {"bootstrapToken": {"apiServerEndpoint": f"{_ip(vip)}:{int(port)}", "token": creds.token,
                                         "caCertHashes": [creds.ca_hash]}},
        "nodeRegistration": _registration(address)}
    if control_plane:
        doc["controlPlane"] = {"localAPIEndpoint": {"advertiseAddress": _ip(address), "bindPort": 6443},
                               "certificateKey": creds.certificate_key}
    return yaml.safe_dump(doc, sort_keys=False)


def cgroup_v1(cluster: Cluster, host: str) -> bool:
    return cluster.run(host, CGROUP_V1).rc == 0


def run(cluster: Cluster, host: str, command: str, *args: str) -> str:
    """`kubeadm COMMAND` on the host (its %s filled with args, quoted). kubeadm's preflight
    refuses a cgroup v1 host in SystemVerification even with failCgroupV1: false, so that
    one check is ignored there; nothing else is ever ignored."""
    ignore = " --ignore-preflight-errors=SystemVerification" if cgroup_v1(cluster, host) else ""
    return cluster.must(host, "kubeadm " + command.split()[0], "kubeadm " + command + ignore, *args)


def join(cluster: Cluster, via: str, host: str, address: str, control_plane: bool) -> None:
    """Join host to the cluster: a 15-minute token (and, for a control plane, a fresh
    certificate key) made on `via`, a JoinConfiguration streamed to the host in a 0600
    file, `kubeadm join`; then the file and the token are deleted, whatever happened."""
    token, ca_hash = parse_join_command(
        cluster.must(via, "creating a join token", "kubeadm token create --ttl 15m --print-join-command"))
    key = ""
    if control_plane:   # the uploaded certificates expire after two hours: upload them again
        key = parse_certificate_key(cluster.must(via, "uploading the control-plane certificates",
                                                 "kubeadm init phase upload-certs --upload-certs"))
    creds = JoinCredentials(token, ca_hash, key)
    try:
        endpoint = (cluster.inv.vip, cluster.inv.port)   # the VIP: a join never depends on one control plane
        cluster.upload(host, join_config(endpoint, address, creds, control_plane).encode(), CONFIG)
        run(cluster, host, "join --config %s", CONFIG)
    finally:
        cluster.run(host, "rm -f -- %s", CONFIG)
        cluster.run(via, "kubeadm token delete %s", token.split(".")[0])   # the id only: not the secret


def joined(cluster: Cluster, host: str) -> bool:
    """The host has been through init or join (its kubelet has a kubeconfig)."""
    return cluster.run(host, "test -e /etc/kubernetes/kubelet.conf").rc == 0


IMAGES_DIR = "/var/lib/hakit/images"


def import_image(cluster: Cluster, host: str, archive: Path) -> None:
    """An OCI archive into the host's containerd, where the kubelet finds it (k8s.io)."""
    remote = f"{IMAGES_DIR}/{archive.name}"
    cluster.upload(host, archive, remote)
    cluster.must(host, f"importing {archive.name}", "ctr -n k8s.io images import --local %s && rm -f %s",
                 remote, remote)


def named(hosts: list[Host], name: str, where: str) -> tuple[str, str]:
    """(name, address) of the inventory host a runbook's host= parameter names."""
    for h in hosts:
        if h.name == name:
            return h.name, h.address
    raise ConfigError(f"host={name[:60]}: not one of the inventory's {where}")


def refuse_joined(cluster: Cluster, host: str) -> None:
    if joined(cluster, host):
        raise HakitError(f"{host} is already part of a cluster (/etc/kubernetes/kubelet.conf exists)")


def a_member(cluster: Cluster, candidates: list[str]) -> str:
    """A control-plane host already in the cluster (it has admin.conf), to make join
    credentials on."""
    for host in candidates:
        if cluster.run(host, "test -e /etc/kubernetes/admin.conf").rc == 0:
            return host
    raise HakitError("no control-plane host of the inventory is in a cluster yet: run kubeadm-init first")
