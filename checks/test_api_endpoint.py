"""API endpoint: clients reach the apiservers through one VIP that exactly one
healthy host holds, with haproxy balancing over every healthy apiserver."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException
from urllib3.exceptions import HTTPError

from hakit import http
from hakit.apilb import backend_states, disagreements
from hakit.cluster import ssh
from hakit.cluster.probes import accepts, readyz
from hakit.errors import UnreachableError
from hakit.hosts import ipv4_addresses, parse_keepalived
from hakit.inventory import IN_CLUSTER, Inventory
from hakit.model import Evidence, check


@check("API-001", "The VIP answers /readyz", property="api-endpoint", runbook="vip-recover",
       remediation="""Find the VIP holder (`ip -4 addr` on each control-plane host); check keepalived
and haproxy there (`systemctl status keepalived haproxy`) and that haproxy has UP backends.""")
def test_vip_answers_readyz(inventory: Inventory, kube_api: client.ApiClient, evidence: Evidence) -> None:
    """Every client (kubelets, controllers, users) reaches the API through the VIP."""
    answer = readyz(inventory.vip_url, kube_api.configuration.ssl_ca_cert, timeout=5)
    got = evidence.record(f"GET {inventory.vip_url}/readyz", answer, expected="ok")
    if got != "ok":
        # haproxy listening on the VIP (it accepts a connection) and still no ready answer: the
        # apiserver it chose is failing (until its check fails `fall` times) or none is UP. It
        # runs in TCP mode, so that can look like any error; the accept tells where to look.
        behind = accepts(inventory.vip, inventory.port) == "ok"
        evidence.about("", "api" if behind else "vip")
        assert not behind, (f"the VIP {inventory.vip_url} does not answer /readyz: {got}; haproxy there accepts "
                            "connections: the apiserver it chose is not ready, or none is UP")
    assert got == "ok", f"the VIP {inventory.vip_url} does not answer /readyz: {got}; nothing accepts connections there"


@check("API-002", "Every apiserver answers /readyz on its own address", property="api-endpoint",
       runbook="control-plane-restart",
       remediation="""On the failing host, read the kube-apiserver log (`crictl logs` of its container, or
the static pod's log); a common cause is its local etcd member being down.""")
def test_every_apiserver_ready(inventory: Inventory, kube_api: client.ApiClient, evidence: Evidence) -> None:
    """A backend that is not ready leaves one failure away from an outage."""
    bad = {}
    for h in inventory.control_plane:
        got = evidence.record(f"{h.name} /readyz", readyz(f"https://{h.address}:{inventory.apiserver_port}",
                                                         kube_api.configuration.ssl_ca_cert, timeout=5), expected="ok")
        if got != "ok":
            bad[h.name] = got
            evidence.about(h.name, "kube-apiserver")
    assert not bad, "apiserver not ready on " + ", ".join(f"{n} ({why})" for n, why in bad.items())


@check("API-003", "haproxy reports every apiserver backend UP on every host", property="api-endpoint",
       runbook="control-plane-restart",
       remediation="""On each host, `echo 'show stat' | socat stdio /run/haproxy/admin.sock` shows why a
backend is DOWN (check failed on /readyz, connection refused). Fix the apiserver it names.""")
def test_haproxy_backends_up(inventory: Inventory, evidence: Evidence) -> None:
    """haproxy only routes to backends it sees UP; one DOWN is lost redundancy."""
    if not inventory.haproxy_stats:
        import pytest
        pytest.skip("api.haproxy_stats not set in the inventory")
    down = []
    for h in inventory.control_plane:
        url = inventory.haproxy_stats.replace("{address}", h.address)
        try:
            csv = http.session().get(url, timeout=5).text
        except Exception as e:  # noqa: BLE001
            down.append(f"{h.name}: stats unreachable ({type(e).__name__})")
            evidence.about(h.name, "haproxy")
            continue
        states = backend_states(csv)
        evidence.record(f"{h.name} backends", ", ".join(f"{k}={v}" for k, v in states.items()), expected="all UP")
        down += [f"{h.name} sees {srv} {st}" for srv, st in states.items() if not st.startswith("UP")]
        for srv, st in states.items():   # a backend is named after its host (hakit's and kubeadm's template)
            if not st.startswith("UP"):
                evidence.about(srv, "kube-apiserver")
        if len(states) < len(inventory.control_plane):
            down.append(f"{h.name} balances to {len(states)} backends, not {len(inventory.control_plane)}")
    assert not down, "; ".join(down)


@check("API-004", "Exactly one host holds the VIP", property="api-endpoint", runbook="vip-recover",
       remediation="""No holder: keepalived is down or every track script fails; start keepalived and fix
haproxy. Two holders (split brain): the hosts cannot hear each other's VRRP adverts; check
virtual_router_id and auth agree and that VRRP (IP protocol 112) is not filtered.""")
def test_exactly_one_vip_holder(inventory: Inventory, cp_hosts: dict[str, Any], evidence: Evidence) -> None:
    """None is an outage; two is split brain, where clients hit whichever answers ARP."""
    shown = ssh.each(cp_hosts, lambda name, host: ssh.output(host, name, "ip -o -4 addr show"))
    holders = [name for name, out in shown.items() if inventory.vip in ipv4_addresses(out)]
    evidence.record("VIP holders", holders or "none", expected="exactly one host")
    if len(holders) != 1:
        evidence.about("", "vip")
    assert len(holders) == 1, (f"no host holds the VIP {inventory.vip}: API outage" if not holders else
                               f"split brain: {', '.join(holders)} all hold the VIP {inventory.vip}")


@check("API-005", "keepalived configs agree across hosts", property="api-endpoint", runbook="provision-api-lb",
       remediation="""Render keepalived.conf on every host from one template: the same virtual_router_id,
auth_pass and VIP, a distinct priority per host, and a track_script on the load balancer.""")
def test_keepalived_configs_agree(inventory: Inventory, cp_hosts: dict[str, Any], evidence: Evidence) -> None:
    """VRRP peers that disagree on router id or auth each elect themselves: split brain."""
    problems, instances = [], {}
    configs = ssh.each(cp_hosts, lambda name, host: ssh.run(host, name, "cat -- %s",
                                                                inventory.host_path("keepalived_conf", name)))
    for name, got in configs.items():
        if got.rc != 0:
            problems.append(f"{name}: no {inventory.host_path('keepalived_conf', name)}")
            continue
        found = [i for i in parse_keepalived(got.stdout) if inventory.vip in i.vips]
        if not found:
            problems.append(f"{name}: no vrrp_instance holds the VIP {inventory.vip}")
            continue
        instances[name] = found[0]
    drift, compared = disagreements(instances)
    for what, value in compared.items():
        evidence.record(what, value, expected="distinct" if what == "priorities" else "same on all")
    assert not problems + drift, "; ".join(problems + drift)


@check("API-006", "Clients are pointed at the VIP, not one host", property="api-endpoint",
       remediation="""Set kubeadm's controlPlaneEndpoint to VIP:PORT (the kubeadm-config ConfigMap in kube-system,
from which joining nodes and kube-proxy are configured) and the server of the kubeconfigs you hand out
to https://VIP:PORT; a client naming one host loses the API with that host.""")
def test_clients_point_at_vip(inventory: Inventory, kube_api: client.ApiClient, evidence: Evidence) -> None:
    """A client pinned to one apiserver does not fail over. In a pod, hakit's own client goes
    through the Service IP, so the cluster's own record of its endpoint is what is judged."""
    endpoint = _control_plane_endpoint(kube_api)
    if inventory.kubeconfig != IN_CLUSTER:
        _is_the_vip("kubeconfig server", kube_api.configuration.host.rstrip("/"), inventory, evidence)
    elif endpoint is None:
        pytest.skip("in a pod hakit reaches the API through the Service IP, and the cluster has no kubeadm-config "
                    "ConfigMap recording its controlPlaneEndpoint: nothing says where clients point")
    if endpoint is not None:
        _is_the_vip("kubeadm controlPlaneEndpoint", f"https://{endpoint}", inventory, evidence)


def _control_plane_endpoint(api: client.ApiClient) -> str | None:
    """kubeadm's controlPlaneEndpoint (host:port) from kube-system/kubeadm-config; None where there is none."""
    try:
        cm = client.CoreV1Api(api).read_namespaced_config_map("kubeadm-config", "kube-system", _request_timeout=10)
    except ApiException as e:
        if e.status == 404:
            return None
        raise UnreachableError(f"cannot read kube-system/kubeadm-config: HTTP {e.status}", ("", "api")) from None
    except (HTTPError, OSError) as e:
        raise UnreachableError(f"cannot read kube-system/kubeadm-config: {type(e).__name__}", ("", "api")) from None
    doc = yaml.safe_load((cm.data or {}).get("ClusterConfiguration", "")) or {}
    return doc.get("controlPlaneEndpoint") or None


def _is_the_vip(what: str, server: str, inventory: Inventory, evidence: Evidence) -> None:
    evidence.record(what, server, expected=inventory.vip_url)
    pinned = [h.name for h in inventory.control_plane if urlsplit(server).hostname == h.address]
    assert not pinned, f"the {what} {server} is host {pinned[0]}, not the VIP {inventory.vip_url}"
    assert server == inventory.vip_url, f"the {what} {server} is not the VIP {inventory.vip_url}"
