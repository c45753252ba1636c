"""pod-network: the simplest pod network that works on hosts sharing one L2 segment
(flannel's host-gw idea, with the standard CNI plugins): each node's pods sit on a local
bridge in the /24 the controller-manager gave the node (its podCIDR), and every host
routes each other node's podCIDR to that node's address. No overlay, no daemon: the
routes are set now and again at boot by a small systemd unit.

Run it after the hosts have joined (a node has no podCIDR before); run it again after
adding a node. Nodes turn Ready once their CNI config exists, and kube-proxy and
CoreDNS (kubeadm's addons) start on them; the run waits for both.
"""

from __future__ import annotations

import ipaddress
import json

import yaml
from kubernetes import client

from hakit import wait
from hakit.errors import HakitError
from hakit.runbook import Context, Runbook, Step
from hakit.snapshot import is_ready
from hakit.validate import ip

CONFLIST = "/etc/cni/net.d/10-hakit-bridge.conflist"
ROUTES_UNIT = "/etc/systemd/system/hakit-pod-routes.service"


def nodes(ctx: Context) -> dict[str, tuple[str, str]]:
    """node -> (InternalIP, podCIDR), validated: both come from what the cluster says."""
    out = {}
    for node in client.CoreV1Api(ctx.control.api).list_node(_request_timeout=10).items:
        address = next((a.address for a in node.status.addresses or [] if a.type == "InternalIP"), None)
        cidr = node.spec.pod_cidr
        if address and cidr:
            out[node.metadata.name] = (ip(address, f"node {node.metadata.name}: InternalIP"),
                                       str(ipaddress.ip_network(cidr)))
    return out


def reachable(ctx: Context) -> list[str]:
    return [h.name for h in ctx.inventory.control_plane + ctx.inventory.workers]


def look(ctx: Context) -> str:
    found = nodes(ctx)
    names = [n.metadata.name for n in client.CoreV1Api(ctx.control.api).list_node(_request_timeout=10).items]
    lacking = [n for n in names if n not in found]
    if lacking:
        raise HakitError(f"nodes without a podCIDR: {', '.join(lacking)} (kubeadm-init sets a pod_subnet, so the "
                         "controller-manager allocates one; wait a few seconds and run again)")
    unreachable = [n for n in found if n not in reachable(ctx)]
    if unreachable:
        raise HakitError(f"nodes not in the inventory (control_plane.hosts or workers.hosts): "
                         f"{', '.join(unreachable)}; hakit cannot configure them")
    ctx.state["nodes"] = found
    ctx.state["cluster_cidr"] = pod_subnet(ctx)
    return "\n".join([f"{n}: {ip}, pods {cidr}" for n, (ip, cidr) in sorted(found.items())]
                     + [f"the cluster's pod network: {ctx.state['cluster_cidr']}"])


def pod_subnet(ctx: Context) -> str:
    """networking.podSubnet of kubeadm's ClusterConfiguration (kube-system/kubeadm-config)."""
    cm = client.CoreV1Api(ctx.control.api).read_namespaced_config_map("kubeadm-config", "kube-system",
                                                                      _request_timeout=10)
    subnet = (yaml.safe_load(cm.data.get("ClusterConfiguration", "")) or {}).get("networking", {}).get("podSubnet")
    if not subnet:
        raise HakitError("kubeadm-config has no networking.podSubnet: kubeadm-init sets one (pod_subnet)")
    return str(ipaddress.ip_network(subnet))


def conflist(cidr: str) -> str:
    return json.dumps({"cniVersion": "1.0.0", "name": "hakit-bridge", "plugins": [
        {"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": False, "hairpinMode": True,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": cidr}]], "routes": [{"dst": "0.0.0.0/0"}]}},
        {"type": "portmap", "capabilities": {"portMappings": True}}]}, indent=1) + "\n"


def routes_unit(routes: list[tuple[str, str]], own: str, cluster: str) -> str:
    nat = f"POSTROUTING -s {own} ! -d {cluster} -j MASQUERADE"
    lines = "\n".join([f"ExecStart=/sbin/ip route replace {cidr} via {via}" for cidr, via in routes]
                      + [f"ExecStart=/bin/sh -c 'iptables -t nat -C {nat} 2>/dev/null || iptables -t nat -A {nat}'"])
    return ("[Unit]\nDescription=Routes to the other nodes' pods (hakit pod-network)\n"
            "After=network-online.target\nWants=network-online.target\n\n"
            f"[Service]\nType=oneshot\nRemainAfterExit=yes\n{lines}\n\n[Install]\nWantedBy=multi-user.target\n")


def configure(ctx: Context) -> str:
    found: dict[str, list[str]] = ctx.state["nodes"]
    for name, (_, cidr) in found.items():
        routes = [(other_cidr, other_ip) for other, (other_ip, other_cidr) in found.items() if other != name]
        ctx.control.write(name, CONFLIST, conflist(cidr))
        ctx.control.write(name, ROUTES_UNIT, routes_unit(routes, cidr, ctx.state["cluster_cidr"]))
        ctx.control.must(name, "setting the pod routes", "systemctl daemon-reload && systemctl enable -q "
                         "hakit-pod-routes.service && systemctl restart hakit-pod-routes.service")
    return f"{CONFLIST} and {len(found) - 1} routes on each of {', '.join(sorted(found))}"


def routed(ctx: Context) -> None:
    for name in ctx.state["nodes"]:
        for other, (address, other_cidr) in ctx.state["nodes"].items():
            if other != name and f"via {address}" not in ctx.control.run(name, "ip route show %s", other_cidr).stdout:
                raise HakitError(f"{name} has no route to {other}'s pods ({other_cidr} via {address})")


def ready(ctx: Context) -> str:
    core, apps = client.CoreV1Api(ctx.control.api), client.AppsV1Api(ctx.control.api)

    def not_ready() -> list[str]:
        out = [n.metadata.name for n in core.list_node(_request_timeout=10).items
               if not is_ready(n)]
        proxy = apps.read_namespaced_daemon_set("kube-proxy", "kube-system", _request_timeout=10).status
        dns = apps.read_namespaced_deployment("coredns", "kube-system", _request_timeout=10).status
        if (proxy.number_ready or 0) < proxy.desired_number_scheduled:
            out.append(f"kube-proxy {proxy.number_ready or 0}/{proxy.desired_number_scheduled} ready")
        if (dns.ready_replicas or 0) < (dns.replicas or 1):
            out.append(f"coredns {dns.ready_replicas or 0}/{dns.replicas} ready")
        return out
    wait.until(lambda: not not_ready(), 240, "every node Ready, kube-proxy and CoreDNS ready", interval=2.0,
               why=lambda: "; ".join(not_ready()))
    return f"{len(ctx.state['nodes'])} nodes Ready; kube-proxy and CoreDNS ready"


RUNBOOK = Runbook(
    name="pod-network",
    title="Pod network: a bridge per node and routes to every other node's pods",
    summary="Each node's podCIDR on a local CNI bridge, routes between nodes on the shared segment, then wait "
            "for nodes Ready and kube-proxy and CoreDNS serving.",
    steps=[
        Step("look", "Read each node's address and podCIDR, and the cluster's pod network",
             lambda ctx: "GET /api/v1/nodes: InternalIP and spec.podCIDR of each; kube-system/kubeadm-config",
             look, changes=False),
        Step("configure", "Write each node's CNI config, and its routes to the other nodes' pods",
             lambda ctx: f"on each node: write {CONFLIST} (bridge cni0, host-local IPAM in its podCIDR), "
                         f"{ROUTES_UNIT} (ip route replace CIDR via NODE; masquerade pods' traffic leaving the "
                         "pod network; at boot too); systemctl restart it",
             configure, verify=routed),
        Step("ready", "Wait until every node is Ready and kube-proxy and CoreDNS are ready",
             lambda ctx: "GET nodes, kube-system/kube-proxy DaemonSet, kube-system/coredns Deployment; "
                         "up to 240 s", ready, changes=False),
    ],
    checks=["WL-001"],
)
