"""Write every file the lab's hosts need before anything starts: the PKI,
kubeconfigs, SSH keys and the rendered keepalived/haproxy/sshd/Prometheus configs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import jinja2

from hakit import inventory
from hakit.apilb import LoadBalancer
from hakit.lab import pki
from hakit.lab.paths import LabPaths
from hakit.lab.topology import (
    ALERTMANAGER_PORT,
    APISERVER_PORT,
    ETCD_METRICS_PORT,
    HAPROXY_STATS_PORT,
    KCM_PORT,
    KSM_PORT,
    LB_PORT,
    PAGER_PORT,
    PUSHGATEWAY_PORT,
    SCHEDULER_PORT,
    SSH_PORT,
    Host,
    LabSpec,
)
from hakit.prometheus import RULES_FILE

TEMPLATES = jinja2.Environment(loader=jinja2.PackageLoader("hakit.lab", "templates"),
                               undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
SERVICE_IP = "10.96.0.1"
VRRP_ROUTER_ID = 51
VRRP_AUTH = "hakit42"  # VRRP PASS auth is cleartext on the wire by design; not a secret.


def render(template: str, dest: Path, mode: int = 0o644, **values: object) -> Path:
    return write(dest, TEMPLATES.get_template(template).render(**values), mode)


def write(dest: Path, text: str, mode: int = 0o644) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text)
    os.chmod(dest, mode)
    return dest


def provision(spec: LabSpec, paths: LabPaths) -> None:
    paths.root.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.root, 0o700)
    ca, etcd_ca = _cluster_pki(paths)
    admin = pki.issue(ca, paths.pki / "clients", "admin", "kubernetes-admin", orgs=("system:masters",), client=True)
    vip_url = f"https://{spec.vip}:{LB_PORT}"
    pki.write_kubeconfig(paths.admin_kubeconfig, vip_url, ca.cert, admin, "kubernetes-admin")
    _ssh_keys(spec, paths)
    for host in spec.control_plane_hosts:
        _control_plane_host(spec, paths, host, ca, etcd_ca)
    for host in spec.hosts:
        if host.role in ("worker", "bulk"):
            kwok = pki.issue(ca, paths.host_pki(host.name), "kwok", f"hakit:kwok:{host.name}",
                             orgs=("hakit:kwok",), client=True)
            pki.write_kubeconfig(paths.kubernetes(host.name) / "kubelet.conf", vip_url, ca.cert, kwok, "kwok")
        if "sshd" in host.components():
            _sshd(paths, host)
    _monitoring_host(spec, paths, ca)


def _cluster_pki(paths: LabPaths) -> tuple[pki.CertPair, pki.CertPair]:
    paths.pki.mkdir(parents=True, exist_ok=True)
    ca = pki.make_ca(paths.pki, "ca", "kubernetes")
    etcd_ca = pki.make_ca(paths.pki / "etcd", "ca", "etcd-ca")
    pki.make_keypair(paths.pki, "sa")
    return ca, etcd_ca


def _ssh_keys(spec: LabSpec, paths: LabPaths) -> None:
    paths.ssh_key.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hakit-lab",
                    "-f", str(paths.ssh_key)], check=True)
    lines = []
    for host in spec.control_plane_hosts + spec.worker_hosts + spec.alertmanager_hosts:
        lines += [f"Host {host.name} {host.address}", f"  HostName {host.address}", "  User root",
                  f"  IdentityFile {paths.ssh_key}", "  IdentitiesOnly yes", "  StrictHostKeyChecking no",
                  "  UserKnownHostsFile /dev/null", "  LogLevel ERROR", "  ConnectTimeout 5", ""]
    paths.ssh_config.write_text("\n".join(lines))


def _control_plane_host(spec: LabSpec, paths: LabPaths, host: Host, ca: pki.CertPair,
                        etcd_ca: pki.CertPair) -> None:
    name, hp = host.name, paths.host_pki(host.name)
    # kubeadm copies the CAs and the service-account keys to every control-plane host.
    (hp / "etcd").mkdir(parents=True, exist_ok=True)
    for rel in ("ca.crt", "ca.key", "sa.key", "sa.pub", "etcd/ca.crt", "etcd/ca.key"):
        shutil.copy2(paths.pki / rel, hp / rel)
    pki.issue(ca, hp, "apiserver", "kube-apiserver", server=True,
              sans=(host.address, spec.vip, SERVICE_IP, "127.0.0.1", name, "localhost", "kubernetes",
                    "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"))
    pki.issue(etcd_ca, hp, "apiserver-etcd-client", "kube-apiserver-etcd-client", client=True)
    pki.issue(etcd_ca, hp / "etcd", "server", name, server=True, client=True,
              sans=(host.address, "127.0.0.1", name, "localhost"))
    pki.issue(etcd_ca, hp / "etcd", "peer", name, server=True, client=True, sans=(host.address, name))
    pki.issue(etcd_ca, hp / "etcd", "healthcheck-client", "kube-etcd-healthcheck-client", client=True)
    local = f"https://{host.address}:{APISERVER_PORT}"
    for user, cn, conf in (("kcm", "system:kube-controller-manager", "controller-manager.conf"),
                           ("scheduler", "system:kube-scheduler", "scheduler.conf")):
        pair = pki.issue(ca, paths.pki / "clients" / name, user, cn, client=True)
        pki.write_kubeconfig(paths.kubernetes(name) / conf, local, ca.cert, pair, cn)
    kwok = pki.issue(ca, hp, "kwok", f"hakit:kwok:{name}", orgs=("hakit:kwok",), client=True)
    pki.write_kubeconfig(paths.kubernetes(name) / "kubelet.conf", local, ca.cert, kwok, "kwok")

    paths.run(name).mkdir(parents=True, exist_ok=True)
    write_load_balancer(spec, paths, host)


def write_load_balancer(spec: LabSpec, paths: LabPaths, host: Host) -> None:
    """The host's keepalived + haproxy configs, as provision-api-lb would write them."""
    lb = LoadBalancer(vip=spec.vip, prefix=24, port=LB_PORT, apiserver_port=APISERVER_PORT,
                      hosts=[inventory.Host(h.name, h.address) for h in spec.control_plane_hosts],
                      router_id=VRRP_ROUTER_ID, auth_pass=VRRP_AUTH, stats_port=HAPROXY_STATS_PORT)
    me = inventory.Host(host.name, host.address)
    check = write(paths.etc(host.name, "keepalived", "check_apiserver.sh"), lb.check_script(), 0o755)
    write(paths.etc(host.name, "keepalived", "keepalived.conf"), lb.keepalived_conf(me, "eth0", str(check)))
    write(paths.etc(host.name, "haproxy", "haproxy.cfg"),
          lb.haproxy_cfg(me, stats_socket=str(paths.run(host.name) / "haproxy.sock")))


def _sshd(paths: LabPaths, host: Host) -> None:
    """A host key, the lab's key authorized for root, and an sshd bound to the host's address."""
    run, ssh = paths.run(host.name), paths.etc(host.name, "ssh")
    run.mkdir(parents=True, exist_ok=True)
    ssh.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ssh / "ssh_host_ed25519_key")],
                   check=True)
    shutil.copy2(paths.ssh_key.with_suffix(".pub"), ssh / "authorized_keys")
    render("sshd_config.j2", ssh / "sshd_config", host=host, port=SSH_PORT,
           host_key=ssh / "ssh_host_ed25519_key", pidfile=run / "sshd.pid", authorized_keys=ssh / "authorized_keys")


def _monitoring_host(spec: LabSpec, paths: LabPaths, ca: pki.CertPair) -> None:
    mon = spec.monitoring_host
    hp = paths.host_pki(mon.name)
    prom = pki.issue(ca, hp, "prometheus", "hakit:prometheus", client=True)
    ksm = pki.issue(ca, hp, "kube-state-metrics", "hakit:kube-state-metrics", client=True)
    shutil.copy2(ca.cert, hp / "ca.crt")
    pki.write_kubeconfig(paths.kubernetes(mon.name) / "kube-state-metrics.conf",
                         f"https://{spec.vip}:{LB_PORT}", ca.cert, ksm, "kube-state-metrics")
    rules_dir = paths.etc(mon.name, "prometheus", "rules")
    rules_dir.mkdir(parents=True, exist_ok=True)
    rules = [Path(shutil.copy2(RULES_FILE.parent / name, rules_dir / name))
             for name in ("ha-alerts.yaml", "hakit-audit.yaml")]
    render("prometheus.yml.j2", paths.etc(mon.name, "prometheus", "prometheus.yml"),
           scrape_interval="5s", evaluation_interval="5s", cluster="hakit-lab",
           alertmanagers=[f"{h.address}:{ALERTMANAGER_PORT}" for h in spec.alertmanager_hosts], rule_files=rules,
           control_planes=spec.control_plane_hosts, etcd_metrics_port=ETCD_METRICS_PORT,
           tls_jobs=[("apiserver", APISERVER_PORT), ("kube-controller-manager", KCM_PORT),
                     ("kube-scheduler", SCHEDULER_PORT)],
           ca_file=hp / "ca.crt", client_cert=prom.cert, client_key=prom.key,
           haproxy_stats_port=HAPROXY_STATS_PORT, ksm=f"{mon.address}:{KSM_PORT}",
           pushgateway=f"{mon.address}:{PUSHGATEWAY_PORT}")
    for am in spec.alertmanager_hosts:
        render("alertmanager.yml.j2", paths.etc(am.name, "alertmanager", "alertmanager.yml"),
               pager=f"{mon.address}:{PAGER_PORT}")
