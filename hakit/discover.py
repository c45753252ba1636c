"""`hakit inventory discover`: a starting inventory written from a kubeconfig.

It reads what a kubeadm cluster shows through its API (control-plane nodes and
the kube-system static pods' flags) and marks what it cannot know (how to reach
the hosts, where Prometheus is) for the user to fill in.
"""

from __future__ import annotations

import os
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
        if is_control_plane(node):
            ips = [a.address for a in node.status.addresses or [] if a.type == "InternalIP"]
            hosts.append({"name": node.metadata.name, "address": ips[0] if ips else node.metadata.name})
    apiservers = snap.control_plane_pods("kube-apiserver")
    etcds = snap.control_plane_pods("etcd")
    apiserver_port = int(_flag(apiservers[0], "secure-port") or 6443) if apiservers else 6443
    doc: dict = {
        "version": SCHEMA_VERSION,
        "cluster": {"name": context or server.hostname, "kubeconfig": str(kubeconfig)},
        "api": {"vip": server.hostname, "port": server.port or 443, "apiserver_port": apiserver_port},
        "control_plane": {"hosts": hosts},
        "etcd": {"endpoints": sorted(u for p in etcds for u in (_flag(p, "advertise-client-urls") or "").split(",") if u)
                 or "discover"},
    }
    if etcds:  # kubeadm's paths, as seen by the host that runs hakit if it is a control-plane host
        pki = Path(_flag(etcds[0], "trusted-ca-file") or "/etc/kubernetes/pki/etcd/ca.crt").parent
        doc["etcd"].update({"ca": str(pki / "ca.crt"), "cert": str(pki / "healthcheck-client.crt"),
                            "key": str(pki / "healthcheck-client.key")})
    return doc


TODO = """
# To fill in (hakit could not see these through the API):
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
