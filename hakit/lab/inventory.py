"""The inventory the lab writes about itself, so `hakit audit` needs no argument."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import yaml

from hakit.inventory import DISRUPTIVE_CHECKS, SCHEMA_VERSION
from hakit.lab import binaries
from hakit.lab.topology import (
    ALERTMANAGER_PORT,
    APISERVER_PORT,
    ETCD_CLIENT_PORT,
    HAPROXY_STATS_PORT,
    LB_PORT,
    PAGER_PORT,
    PROMETHEUS_PORT,
)

if TYPE_CHECKING:
    from hakit.lab.netns import Lab


def write(lab: Lab) -> None:
    spec, paths = lab.spec, lab.paths
    mon = spec.monitoring_host
    first = spec.control_plane_hosts[0].name
    host_dir = str(paths.host("{host}"))
    doc = {
        "version": SCHEMA_VERSION,
        "cluster": {"name": "hakit-lab", "kubeconfig": str(paths.admin_kubeconfig)},
        "api": {"vip": spec.vip, "port": LB_PORT, "apiserver_port": APISERVER_PORT,
                "haproxy_stats": f"http://{{address}}:{HAPROXY_STATS_PORT}/stats;csv"},
        "control_plane": {
            "hosts": [{"name": h.name, "address": h.address} for h in spec.control_plane_hosts],
            "paths": {"pki": f"{host_dir}/etc/kubernetes/pki", "kubeconfigs": f"{host_dir}/etc/kubernetes",
                      "keepalived_conf": f"{host_dir}/etc/keepalived/keepalived.conf",
                      "keepalived_check": f"{host_dir}/etc/keepalived/check_apiserver.sh",
                      "haproxy_cfg": f"{host_dir}/etc/haproxy/haproxy.cfg",
                      "haproxy_socket": f"{host_dir}/run/haproxy.sock",
                      "etcd_data": f"{host_dir}/var/lib/etcd", "etcdutl": binaries.path("etcdutl")},
        },
        "access": {"ssh": {"user": "root", "key": str(paths.ssh_key), "port": 22, "config": str(paths.ssh_config)}},
        "etcd": {"endpoints": [f"https://{h.address}:{ETCD_CLIENT_PORT}" for h in spec.control_plane_hosts],
                 "ca": str(paths.host_pki(first) / "etcd" / "ca.crt"),
                 "cert": str(paths.host_pki(first) / "etcd" / "healthcheck-client.crt"),
                 "key": str(paths.host_pki(first) / "etcd" / "healthcheck-client.key"),
                 "backup_dir": str(paths.backups)},
        "monitoring": {"hosts": [{"name": h.name, "address": h.address} for h in spec.alertmanager_hosts],
                       "prometheus": f"http://{mon.address}:{PROMETHEUS_PORT}",
                       "alertmanager": f"http://{mon.address}:{ALERTMANAGER_PORT}",
                       "receiver": f"http://{mon.address}:{PAGER_PORT}/notifications",
                       "alertmanager_peers": len(spec.alertmanager_hosts)},
        "workloads": {"critical": [{"namespace": "kube-system", "name": "coredns"}]},
        "disruptive": {
            "allowed": list(DISRUPTIVE_CHECKS),
            "journal": str(paths.root / "faults.jsonl"),
            # The lab's systemctl, run over SSH on the host like any fault on a real cluster.
            "control": f"HAKIT_LAB_DIR={paths.root} {sys.executable} -m hakit.lab.ctl "
                       "{action} {host} {component}",
        },
    }
    paths.inventory.write_text("# Written by `hakit lab up`: the lab described as any cluster would be.\n"
                               + yaml.safe_dump(doc, sort_keys=False))
