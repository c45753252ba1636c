"""`hakit inventory discover`: a starting inventory written from a kubeconfig.

It reads what a kubeadm cluster shows through its API (control-plane nodes and
the kube-system static pods' flags) and marks what it cannot know (how to reach
the hosts, where Prometheus is) for the user to fill in.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlparse

import yaml

from hakit.inventory import SCHEMA_VERSION
from hakit.kube import api_client
from hakit.snapshot import Snapshot, is_control_plane


def _flag(pod, name: str) -> str | None:  # type: ignore[no-untyped-def]
    for arg in pod.spec.containers[0].command or []:
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return None


def discover(kubeconfig: Path, context: str | None = None) -> dict:
    api = api_client(kubeconfig, context)
    snap = Snapshot(api)
    server = urlparse(api.configuration.host)
    hosts = []
    for node in snap.nodes:
        if is_control_plane(node):   # what a node says of itself is checked when the inventory is loaded
            ips = [a.address for a in node.status.addresses or [] if a.type == "InternalIP"]
            hosts.append({"name": node.metadata.name, "address": ips[0] if ips else "FILL-IN-ITS-IP"})
    apiservers = snap.control_plane_pods("kube-apiserver")
    etcds = snap.control_plane_pods("etcd")
    apiserver_port = int(_flag(apiservers[0], "secure-port") or 6443) if apiservers else 6443
    doc: dict = {
        "version": SCHEMA_VERSION,
        # a file name too (the fault journal's): "kubernetes-admin@kubernetes" becomes "kubernetes-admin-kubernetes"
        "cluster": {"name": re.sub(r"[^A-Za-z0-9._-]+", "-", context or server.hostname or "cluster").strip("-._"),
                    "kubeconfig": str(kubeconfig)},
        "api": {"vip": server.hostname, "port": server.port or 443, "apiserver_port": apiserver_port},
        "control_plane": {"hosts": hosts},
        "etcd": {"endpoints": snap.etcd_endpoints() if etcds else "discover"},
    }
    if etcds:  # kubeadm's paths: written only where hakit runs on a control-plane host that has them
        pki = Path(_flag(etcds[0], "trusted-ca-file") or "/etc/kubernetes/pki/etcd/ca.crt").parent
        files = {"ca": pki / "ca.crt", "cert": pki / "healthcheck-client.crt", "key": pki / "healthcheck-client.key"}
        if all(p.is_file() for p in files.values()):
            doc["etcd"].update({k: str(p) for k, p in files.items()})
    return doc


TODO = """
# To fill in (hakit could not see these through the API):
# under etcd: above, unless it has them: a client certificate etcd accepts, copied from a
#   control-plane host (kubeadm: /etc/kubernetes/pki/etcd/{ca,healthcheck-client}.{crt,key}),
#   as ca:, cert: and key: (paths relative to this file); without it etcd is unverified
# access:                 # how host checks reach the control-plane hosts
#   ssh: {user: root, key: ~/.ssh/id_ed25519}
#   # or ansible: {inventory: hosts.ini, control_plane_group: k8s-master}
# monitoring:
#   prometheus: http://PROMETHEUS:9090
#   alertmanager: http://ALERTMANAGER:9093
# workloads:
#   critical: [{namespace: kube-system, name: coredns}]
"""


def write(doc: dict, dest: Path) -> None:
    """Write atomically; an existing file is never overwritten half-way."""
    text = "# Written by `hakit inventory discover`; check it, then fill in the rest.\n"
    text += yaml.safe_dump(doc, sort_keys=False) + TODO
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, dest)
