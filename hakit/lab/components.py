"""The command line of every lab component, as kubeadm's static-pod manifests
would run it, plus a readiness probe per component."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from hakit.lab import binaries
from hakit.lab.paths import LabPaths
from hakit.lab.topology import (
    ALERTMANAGER_CLUSTER_PORT,
    ALERTMANAGER_PORT,
    APISERVER_PORT,
    BULK,
    ETCD_CLIENT_PORT,
    ETCD_METRICS_PORT,
    ETCD_PEER_PORT,
    HAPROXY_STATS_PORT,
    KCM_PORT,
    KSM_PORT,
    PAGER_PORT,
    PROMETHEUS_PORT,
    PUSHGATEWAY_PORT,
    SCHEDULER_PORT,
    SERVICE_CIDR,
    SSH_PORT,
    Host,
    LabSpec,
)

# Node heartbeats: kwok renews each node's Lease every quarter of its duration; the
# node-lifecycle controller declares a node lost after the grace period, a few
# missed renewals later (as upstream's 50 s is to the kubelet's 10 s renewals).
NODE_LEASE_SECONDS = 8           # renewals every 2 s: node loss is seen in ~16 s
NODE_MONITOR_GRACE = "16s"
# With --bulk-nodes, thousands of 2 s renewals would swamp a 2-core lab: upstream's
# pace instead (40 s leases, 10 s renewals, 50 s grace) for every node.
BULK_NODE_LEASE_SECONDS = 40
BULK_NODE_MONITOR_GRACE = "50s"
# ... and the controllers' client rate limits raised as big clusters raise them (defaults
# 20/30 and 50/100 requests a second would take ten minutes to place 30,000 pods).
BULK_CLIENT = {"kube_api_qps": "300", "kube_api_burst": "600"}


@dataclass(frozen=True)
class Component:
    host: str
    name: str
    argv: tuple[str, ...]
    health: tuple[str, ...]  # (kind, target...) for health.probe(); kind in http/https/tcp/etcd

    @property
    def key(self) -> str:
        return f"{self.host}/{self.name}"


def components(spec: LabSpec, paths: LabPaths) -> list[Component]:
    out: list[Component] = []
    for host in spec.hosts:
        for name in host.components():
            out.append(_BUILDERS[name](spec, paths, host))
    return out


def _flags(**flags: object) -> tuple[str, ...]:
    """--key=value flags in kubeadm's spelling (underscores become dashes)."""
    return tuple(f"--{k.replace('_', '-')}={v}" for k, v in flags.items())


def _etcd(spec: LabSpec, paths: LabPaths, host: Host) -> Component:
    p = paths.host_pki(host.name) / "etcd"
    cluster = ",".join(f"{h.name}=https://{h.address}:{ETCD_PEER_PORT}" for h in spec.control_plane_hosts)
    argv = (binaries.path("etcd"),) + _flags(
        name=host.name, data_dir=paths.etcd_data(host.name),
        advertise_client_urls=f"https://{host.address}:{ETCD_CLIENT_PORT}",
        listen_client_urls=f"https://127.0.0.1:{ETCD_CLIENT_PORT},https://{host.address}:{ETCD_CLIENT_PORT}",
        initial_advertise_peer_urls=f"https://{host.address}:{ETCD_PEER_PORT}",
        listen_peer_urls=f"https://{host.address}:{ETCD_PEER_PORT}",
        listen_metrics_urls=f"http://127.0.0.1:{ETCD_METRICS_PORT},http://{host.address}:{ETCD_METRICS_PORT}",
        initial_cluster=cluster, initial_cluster_state="new", initial_cluster_token="hakit-lab",
        client_cert_auth="true", trusted_ca_file=p / "ca.crt", cert_file=p / "server.crt", key_file=p / "server.key",
        peer_client_cert_auth="true", peer_trusted_ca_file=p / "ca.crt", peer_cert_file=p / "peer.crt",
        peer_key_file=p / "peer.key", snapshot_count=10000, experimental_initial_corrupt_check="true",
        quota_backend_bytes=2 * 1024**3, heartbeat_interval=100, election_timeout=1000)
    return Component(host.name, "etcd", argv, ("http", f"http://{host.address}:{ETCD_METRICS_PORT}/health"))


def _apiserver(spec: LabSpec, paths: LabPaths, host: Host) -> Component:
    p = paths.host_pki(host.name)
    argv = (binaries.path("kube-apiserver"),) + _flags(
        advertise_address=host.address, bind_address="0.0.0.0", secure_port=APISERVER_PORT,
        allow_privileged="true", authorization_mode="Node,RBAC", client_ca_file=p / "ca.crt",
        enable_admission_plugins="NodeRestriction", enable_bootstrap_token_auth="true",
        etcd_cafile=p / "etcd" / "ca.crt", etcd_certfile=p / "apiserver-etcd-client.crt",
        etcd_keyfile=p / "apiserver-etcd-client.key", etcd_servers=f"https://127.0.0.1:{ETCD_CLIENT_PORT}",
        service_account_issuer="https://kubernetes.default.svc.cluster.local",
        service_account_key_file=p / "sa.pub", service_account_signing_key_file=p / "sa.key",
        service_cluster_ip_range=SERVICE_CIDR, tls_cert_file=p / "apiserver.crt",
        tls_private_key_file=p / "apiserver.key", endpoint_reconciler_type="lease",
        profiling="false", v=1)
    return Component(host.name, "kube-apiserver", argv,
                     ("https", f"https://{host.address}:{APISERVER_PORT}/readyz"))


def _controller_manager(spec: LabSpec, paths: LabPaths, host: Host) -> Component:
    p, conf = paths.host_pki(host.name), paths.kubernetes(host.name) / "controller-manager.conf"
    argv = (binaries.path("kube-controller-manager"),) + _flags(
        authentication_kubeconfig=conf, authorization_kubeconfig=conf, kubeconfig=conf,
        bind_address=host.address, secure_port=KCM_PORT, cert_dir=paths.run(host.name) / "kcm-certs",
        cluster_name="hakit-lab", cluster_signing_cert_file=p / "ca.crt", cluster_signing_key_file=p / "ca.key",
        controllers="*,bootstrapsigner,tokencleaner", leader_elect="true", root_ca_file=p / "ca.crt",
        service_account_private_key_file=p / "sa.key", service_cluster_ip_range=SERVICE_CIDR,
        use_service_account_credentials="true",
        node_monitor_grace_period=BULK_NODE_MONITOR_GRACE if spec.bulk_nodes else NODE_MONITOR_GRACE,
        node_monitor_period="2s", profiling="false", v=1, **(BULK_CLIENT if spec.bulk_nodes else {}))
    return Component(host.name, "kube-controller-manager", argv,
                     ("https", f"https://{host.address}:{KCM_PORT}/healthz"))


def _scheduler(spec: LabSpec, paths: LabPaths, host: Host) -> Component:
    conf = paths.kubernetes(host.name) / "scheduler.conf"
    argv = (binaries.path("kube-scheduler"),) + _flags(
        authentication_kubeconfig=conf, authorization_kubeconfig=conf, kubeconfig=conf,
        bind_address=host.address, secure_port=SCHEDULER_PORT, cert_dir=paths.run(host.name) / "scheduler-certs",
        leader_elect="true", profiling="false", v=1, **(BULK_CLIENT if spec.bulk_nodes else {}))
    return Component(host.name, "kube-scheduler", argv,
                     ("https", f"https://{host.address}:{SCHEDULER_PORT}/healthz"))


def _haproxy(spec: LabSpec, paths: LabPaths, host: Host) -> Component:
    argv = (binaries.path("haproxy"), "-W", "-db", "-f", str(paths.etc(host.name, "haproxy", "haproxy.cfg")))
    return Component(host.name, "haproxy", argv, ("http", f"http://{host.address}:{HAPROXY_STATS_PORT}/stats"))


def _keepalived(spec: LabSpec, paths: LabPaths, host: Host) -> Component:
    run = paths.run(host.name)
    argv = (binaries.path("keepalived"), "--dont-fork", "--log-console", "--log-detail", "--vrrp",
            "-f", str(paths.etc(host.name, "keepalived", "keepalived.conf")),
            "-p", str(run / "keepalived.pid"), "-r", str(run / "vrrp.pid"), "-c", str(run / "checkers.pid"))
    return Component(host.name, "keepalived", argv, ("process",))


def _sshd(spec: LabSpec, paths: LabPaths, host: Host) -> Component:
    argv = (binaries.path("sshd"), "-D", "-e", "-f", str(paths.etc(host.name, "ssh", "sshd_config")))
    return Component(host.name, "sshd", argv, ("tcp", host.address, str(SSH_PORT)))


def _kwok(spec: LabSpec, paths: LabPaths, host: Host) -> Component:
    stages = binaries.kwok_stages()
    configs = [stages / "node" / "fast", stages / "node" / "heartbeat-with-lease", stages / "pod" / "fast",
               Path(__file__).parent / "kwok"]
    argv = [binaries.path("kwok"), f"--kubeconfig={paths.kubernetes(host.name) / 'kubelet.conf'}",
            "--manage-all-nodes=false",
            f"--node-lease-duration-seconds={BULK_NODE_LEASE_SECONDS if spec.bulk_nodes else NODE_LEASE_SECONDS}",
            f"--node-ip={host.address}", f"--server-address={host.address}:10247",
            f"--cidr=10.244.{host.address.rsplit('.', 1)[1]}.0/24"]
    if host.role == BULK:
        argv.append("--manage-nodes-with-label-selector=hakit.io/bulk=true")
        configs.append(Path(__file__).parent / "kwok" / "bulk")   # more workers
    else:
        argv.append(f"--manage-single-node={host.name}")
    for c in configs:
        argv += [f"--config={f}" for f in sorted(c.glob("*.yaml")) if f.name != "kustomization.yaml"]
    return Component(host.name, "kwok", tuple(argv), ("process",))


def _prometheus(spec: LabSpec, paths: LabPaths, host: Host) -> Component:
    argv = (binaries.path("prometheus"), f"--config.file={paths.etc(host.name, 'prometheus', 'prometheus.yml')}",
            f"--storage.tsdb.path={paths.host(host.name) / 'var' / 'lib' / 'prometheus'}",
            f"--web.listen-address={host.address}:{PROMETHEUS_PORT}", "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=1d",
            "--rules.alert.resend-delay=10s")
    return Component(host.name, "prometheus", argv, ("http", f"http://{host.address}:{PROMETHEUS_PORT}/-/ready"))


def _alertmanager(spec: LabSpec, paths: LabPaths, host: Host) -> Component:
    """Clustered with the lab's other Alertmanager, as an HA pair gossips silences and
    deduplicates notifications."""
    peers = [f"--cluster.peer={h.address}:{ALERTMANAGER_CLUSTER_PORT}" for h in spec.alertmanager_hosts if h != host]
    argv = (binaries.path("prometheus-alertmanager"),
            f"--config.file={paths.etc(host.name, 'alertmanager', 'alertmanager.yml')}",
            f"--storage.path={paths.host(host.name) / 'var' / 'lib' / 'alertmanager'}",
            f"--web.listen-address={host.address}:{ALERTMANAGER_PORT}",
            f"--cluster.listen-address={host.address}:{ALERTMANAGER_CLUSTER_PORT}", *peers)
    return Component(host.name, "alertmanager", argv,
                     ("http", f"http://{host.address}:{ALERTMANAGER_PORT}/-/ready"))


def _pushgateway(spec: LabSpec, paths: LabPaths, host: Host) -> Component:
    """Where audits push their metrics (hakit audit --pushgateway) for Prometheus to scrape."""
    argv = (binaries.path("prometheus-pushgateway"), f"--web.listen-address={host.address}:{PUSHGATEWAY_PORT}")
    return Component(host.name, "pushgateway", argv, ("http", f"http://{host.address}:{PUSHGATEWAY_PORT}/-/ready"))


def _pager(spec: LabSpec, paths: LabPaths, host: Host) -> Component:
    argv = (sys.executable, "-m", "hakit.lab.pager", f"{host.address}:{PAGER_PORT}", str(paths.pager_file))
    return Component(host.name, "pager", argv, ("http", f"http://{host.address}:{PAGER_PORT}/healthz"))


def _ksm(spec: LabSpec, paths: LabPaths, host: Host) -> Component:
    argv = (binaries.path("kube-state-metrics"),
            f"--kubeconfig={paths.kubernetes(host.name) / 'kube-state-metrics.conf'}",
            f"--host={host.address}", f"--port={KSM_PORT}", "--telemetry-port=8081",
            f"--telemetry-host={host.address}",
            "--resources=nodes,pods,deployments,replicasets,poddisruptionbudgets,leases")
    return Component(host.name, "kube-state-metrics", argv, ("http", f"http://{host.address}:{KSM_PORT}/healthz"))


_BUILDERS = {
    "etcd": _etcd, "kube-apiserver": _apiserver, "kube-controller-manager": _controller_manager,
    "kube-scheduler": _scheduler, "haproxy": _haproxy, "keepalived": _keepalived, "sshd": _sshd,
    "kwok": _kwok, "prometheus": _prometheus, "alertmanager": _alertmanager, "pager": _pager,
    "pushgateway": _pushgateway,
    "kube-state-metrics": _ksm,
}
