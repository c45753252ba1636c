"""How hakit acts on a cluster's hosts: over SSH (testinfra), as an operator would.

A component is stopped, started or killed with a command template. The default
is kubeadm's layout: keepalived, haproxy and kubelet are systemd units; etcd and
the control-plane components are static pods, stopped by parking their manifest
where the kubelet does not look and started by putting it back. An inventory can
give its own template (`disruptive.control`); the lab's points at `hakit lab ctl`.

Link and partition faults cut the very network an SSH session travels on, so on
the host they are scheduled to heal themselves after a fixed time; the restore
then waits for the host to answer again rather than trying to reach it.
"""

from __future__ import annotations

import base64
import shlex
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException
from urllib3.exceptions import HTTPError

from hakit import hosts, kube, wait
from hakit.errors import ConfigError, HakitError, UnreachableError
from hakit.etcd import CLIENT_PORT, EtcdClient
from hakit.http import session
from hakit.inventory import Inventory
from hakit.prometheus import Alertmanager
from hakit.snapshot import node_is_ready

CONTROL_PLANE_COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
                            "haproxy", "keepalived")
SYSTEMD_UNITS = ("keepalived", "haproxy", "kubelet")
MANIFESTS, PARKED = "/etc/kubernetes/manifests", "/etc/kubernetes/hakit-parked"


def kubeadm_command(action: str, component: str, initial_cluster: str = "") -> str:
    """The shell command that performs action on a component of a kubeadm host.

    `rejoin` starts a stopped etcd with an empty data dir as a member added to a running
    cluster: its manifest gets --initial-cluster-state=existing and the cluster's current
    --initial-cluster (kubeadm writes only the members known at join time)."""
    c = shlex.quote(component)
    if action == "rejoin":
        parked = f"{PARKED}/{c}.yaml"
        edit = (f"-e '/--initial-cluster-state=/d' "
                f"-e 's#^\\( *\\)- --initial-cluster=.*#\\1- --initial-cluster-state=existing\\n"
                f"\\1- --initial-cluster={initial_cluster}#'")
        return f"if [ -f {parked} ]; then sed -i {edit} {parked} && mv {parked} {MANIFESTS}/; fi"
    if component in SYSTEMD_UNITS:
        return {"stop": f"systemctl stop {c}", "start": f"systemctl start {c}",
                "kill": f"systemctl kill --signal=SIGKILL {c}",
                "is-active": f"systemctl is-active --quiet {c}"}[action]
    running = f"crictl ps -q --state running --name '^{component}$' | grep -q ."
    return {
        # The kubelet stops a static pod whose manifest leaves its directory; wait until it has.
        "stop": f"mkdir -p {PARKED} && mv {MANIFESTS}/{c}.yaml {PARKED}/ && "
                f"for i in $(seq 120); do {running} || exit 0; sleep 0.5; done; exit 1",
        "start": f"if [ -f {PARKED}/{c}.yaml ]; then mv {PARKED}/{c}.yaml {MANIFESTS}/; fi",
        "kill": f"pkill --signal KILL -x {c}",   # the kubelet restarts the container
        "is-active": running,
    }[action]


def render(template: str | None, action: str, host: str, component: str, initial_cluster: str = "") -> str:
    if template is None:
        return kubeadm_command(action, component, initial_cluster)
    return template.replace("{action}", action).replace("{host}", shlex.quote(host)) \
                   .replace("{component}", shlex.quote(component)) \
                   .replace("{initial_cluster}", shlex.quote(initial_cluster))


LINK_FAULT_DELAY = 0.3   # lets the SSH session that schedules a link fault return first


def self_healing(command: str, undo: str, seconds: float) -> str:
    """Run command shortly and undo it `seconds` later, detached from the SSH session that
    starts it, so the undo happens even if the network (or hakit) never comes back."""
    script = f"sleep {LINK_FAULT_DELAY}; {command}; sleep {seconds:g}; {undo}"
    return f"nohup setsid sh -c {shlex.quote(script)} >/dev/null 2>&1 &"


def partition_script(peers: list[str]) -> str:
    """iptables rules in a chain of hakit's own that drop traffic to and from peers."""
    lines = [f"iptables -N {PARTITION_CHAIN} 2>/dev/null; iptables -F {PARTITION_CHAIN}"]
    for peer in peers:
        lines += [f"iptables -A {PARTITION_CHAIN} -s {peer} -j DROP", f"iptables -A {PARTITION_CHAIN} -d {peer} -j DROP"]
    lines += [f"iptables -C {chain} -j {PARTITION_CHAIN} 2>/dev/null || iptables -I {chain} -j {PARTITION_CHAIN}"
              for chain in ("INPUT", "OUTPUT")]
    return "; ".join(lines)


PARTITION_CHAIN = "HAKIT-PARTITION"
VRRP_SETTLE = 5.0   # seconds: more than 3 missed adverts at keepalived's default advert_int of 1 s, plus skew
HEAL = f"iptables -F {PARTITION_CHAIN} 2>/dev/null; true"


@dataclass(frozen=True)
class Health:
    host: str
    component: str
    ok: bool
    detail: str = ""


class ClusterControl:
    """Acts on the hosts of one inventory; every fault goes through here."""

    def __init__(self, inv: Inventory) -> None:
        if inv.ssh is None and not inv.ansible_inventory:
            raise ConfigError("access: disruptive checks act on hosts and need access.ssh or access.ansible")
        self.inv = inv
        self.addresses = {h.name: h.address for h in inv.control_plane}
        self._hosts: dict[str, Any] = {}
        self._api: client.ApiClient | None = None

    @property
    def api(self) -> client.ApiClient:
        if self._api is None:
            self._api = kube.api_client(self.inv.kubeconfig, self.inv.context)
        return self._api

    def host(self, name: str) -> Any:
        """A control-plane host of the inventory, or a node reached at its InternalIP."""
        if name not in self.addresses:
            self.addresses[name] = self._node_address(name)
        if name not in self._hosts:
            self._hosts[name] = hosts.connect(self.inv, name, self.addresses[name])
        return self._hosts[name]

    def _node_address(self, name: str) -> str:
        try:
            node = client.CoreV1Api(self.api).read_node(name)
        except ApiException as e:
            raise ConfigError(f"host {name}: not a control-plane host of the inventory, and no such node "
                              f"(HTTP {e.status})") from None
        for a in node.status.addresses or []:
            if a.type == "InternalIP":
                return a.address
        raise ConfigError(f"node {name}: has no InternalIP to reach it at")

    def run(self, host: str, command: str) -> Any:
        return hosts.run(self.host(host), host, command)

    def must(self, host: str, command: str, what: str) -> None:
        result = self.run(host, command)
        if result.rc != 0:
            raise HakitError(f"{what} on {host} failed (exit {result.rc}): "
                             f"{(result.stderr or result.stdout).strip()[:200] or 'no output'}")

    def stop(self, host: str, component: str) -> None:
        self.must(host, render(self.inv.fault_control, "stop", host, component), f"stopping {component}")

    def start(self, host: str, component: str) -> None:
        self.must(host, render(self.inv.fault_control, "start", host, component), f"starting {component}")

    def kill(self, host: str, component: str) -> None:
        self.must(host, render(self.inv.fault_control, "kill", host, component), f"killing {component}")

    def rejoin(self, host: str, initial_cluster: str) -> None:
        """Start the host's etcd, its data dir empty, as a member just added to the cluster."""
        self.must(host, render(self.inv.fault_control, "rejoin", host, "etcd", initial_cluster), "rejoining etcd")

    def is_active(self, host: str, component: str) -> bool:
        return self.run(host, render(self.inv.fault_control, "is-active", host, component)).rc == 0

    def vip_holders(self) -> list[str]:
        return [h.name for h in self.inv.control_plane if self.holds(h.name, self.inv.vip)]

    def one_vip_holder_for(self, seconds: float = VRRP_SETTLE) -> bool:
        """One holder now and throughout the next seconds: a keepalived just (re)started is a
        BACKUP until it misses three adverts, so one holder at first sight may be a split
        brain about to happen."""
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            if len(self.vip_holders()) != 1:
                return False
            time.sleep(0.5)
        return True

    def holds(self, host: str, address: str) -> bool:
        """Whether the host carries address (the VIP) on any interface."""
        return address in hosts.ipv4_addresses(self.run(host, "ip -o -4 addr show").stdout)

    def read(self, host: str, path: str) -> str:
        result = self.run(host, f"cat {shlex.quote(path)}")
        if result.rc != 0:
            raise HakitError(f"host {host}: cannot read {path}: {result.stderr.strip()[:160]}")
        return result.stdout

    def write(self, host: str, path: str, text: str, mode: int = 0o644) -> None:
        """Replace a file on the host whole: written beside it, then renamed over it."""
        data, q = base64.b64encode(text.encode()).decode(), shlex.quote(path)
        self.must(host, f"mkdir -p $(dirname {q}) && echo {data} | base64 -d > {q}.hakit-new && "
                        f"chmod {mode:o} {q}.hakit-new && mv {q}.hakit-new {q}", f"writing {path}")

    def upload(self, host: str, local: Path, remote: str) -> None:
        """Copy a file (a snapshot: too big for a command line) to the host, then rename it
        into place, over the same SSH multiplexed connection the host's commands use."""
        self.host(host)   # resolves a node's address
        staging = shlex.quote(remote + ".hakit-new")
        if self.inv.ansible_inventory:
            self._hosts[host].ansible("copy", f"src={local} dest={remote}.hakit-new", check=False)
        else:
            command = f"mkdir -p $(dirname {staging}) && cat > {staging}"
            argv = hosts.ssh_argv(self.inv.ssh, self.addresses[host], command)  # type: ignore[arg-type]
            with local.open("rb") as f:
                done = subprocess.run(argv, stdin=f, capture_output=True, timeout=600)
            if done.returncode != 0:
                raise HakitError(f"copying {local} to {host}:{remote} failed: "
                                 f"{done.stderr.decode(errors='replace').strip()[:200]}")
        self.must(host, f"mv {staging} {shlex.quote(remote)}", f"placing {remote}")

    def interface(self, host: str) -> str:
        out = self.run(host, "ip -o -4 addr show").stdout
        iface = hosts.interface_with(out, self.addresses[host])
        if iface is None:
            raise HakitError(f"host {host}: no interface carries {self.addresses[host]}")
        return iface

    def link_down(self, host: str, seconds: float) -> None:
        """The host's link goes down now and comes back by itself after `seconds`."""
        dev = shlex.quote(self.interface(host))
        self.must(host, self_healing(f"ip link set dev {dev} down", f"ip link set dev {dev} up", seconds),
                  "scheduling a link fault")

    def partition(self, host: str, seconds: float) -> None:
        """Drop traffic between host and the other control-plane hosts; heals by itself
        after `seconds` if heal() never comes."""
        peers = [a for n, a in self.addresses.items() if n != host]
        self.must(host, partition_script(peers) + "; " + self_healing("true", HEAL, seconds), "partitioning")

    def heal(self, host: str) -> None:
        self.must(host, HEAL, "healing a partition")

    def cordon(self, host: str) -> None:
        client.CoreV1Api(self.api).patch_node(host, {"spec": {"unschedulable": True}})

    def uncordon(self, host: str) -> None:
        client.CoreV1Api(self.api).patch_node(host, {"spec": {"unschedulable": None}})

    def delete_namespace(self, namespace: str) -> None:
        """Remove a namespace hakit made (its probe workload); gone already is fine."""
        try:
            client.CoreV1Api(self.api).delete_namespace(namespace, propagation_policy="Background")
        except ApiException as e:
            if e.status != 404:
                raise

    def expire_silences(self, url: str, comment: str) -> None:
        """Expire the Alertmanager silences hakit created with this comment (one run's)."""
        am = Alertmanager(url)
        for s in am.silences():
            if s.get("createdBy") == "hakit" and s.get("comment") == comment and s["status"]["state"] != "expired":
                am.expire(s["id"])

    def wait_answering(self, host: str, timeout: float) -> None:
        """Until the host answers over SSH again (after a self-healing link fault)."""
        def answers() -> bool:
            try:
                return self.run(host, "true").rc == 0
            except UnreachableError:
                return False
        wait.until(answers, timeout, f"{host} to answer over SSH again", interval=1.0)

    def health(self) -> list[Health]:
        """Every control-plane component, as the host's service manager sees it, plus each
        apiserver's /readyz, each etcd member's health over the network, and every node Ready
        (a node can be left NotReady after a fault elsewhere, e.g. a client pinned to a broken
        apiserver)."""
        with ThreadPoolExecutor(max_workers=8) as pool:
            active = list(pool.map(self._active, [h.name for h in self.inv.control_plane]))
            network = list(pool.map(self._serving, self.inv.control_plane))
        return [h for group in active + network for h in group] + self._nodes()

    def _nodes(self) -> list[Health]:
        try:
            nodes = client.CoreV1Api(self.api).list_node(_request_timeout=5).items
        except (ApiException, OSError, HTTPError) as e:
            return [Health("cluster", "nodes", False, f"cannot list nodes: {type(e).__name__}")]
        return [Health(n.metadata.name, "node", ready, "" if ready else "NotReady")
                for n in nodes for ready in [node_is_ready(n)]]

    def _active(self, host: str) -> list[Health]:
        """One SSH round trip per host: each component's is-active status, one per line."""
        script = "; ".join(f"( {render(self.inv.fault_control, 'is-active', host, c)} ) >/dev/null 2>&1; echo $?"
                           for c in CONTROL_PLANE_COMPONENTS)
        try:
            codes = self.run(host, script).stdout.split()
        except UnreachableError as e:
            return [Health(host, c, False, str(e)) for c in CONTROL_PLANE_COMPONENTS]
        return [Health(host, c, code == "0", "" if code == "0" else "not running")
                for c, code in zip(CONTROL_PLANE_COMPONENTS, codes)]

    def _serving(self, h: Any) -> list[Health]:
        try:
            r = session().get(f"https://{h.address}:{self.inv.apiserver_port}/readyz", verify=False, timeout=3)
            api = Health(h.name, "kube-apiserver /readyz", r.status_code == 200, f"HTTP {r.status_code}")
        except OSError as e:
            api = Health(h.name, "kube-apiserver /readyz", False, type(e).__name__)
        endpoint = self.etcd_endpoint(h.name)
        ok, why = self.etcd().health(endpoint) if endpoint else (True, "not an etcd member")
        return [api, Health(h.name, "etcd health", ok, why)]

    def etcd_members(self) -> list[tuple[str, bool]]:
        """(name, healthy) for every member etcd itself lists: what quorum is counted over."""
        etcd = self.etcd()
        return [(m.name, any(etcd.health(url)[0] for url in m.client_urls)) for m in etcd.members()]

    def etcd_endpoint(self, host: str) -> str | None:
        """The client URL of the host's own etcd member."""
        return next((e for e in self.etcd().endpoints if f"//{self.addresses[host]}:" in e), None)

    def etcd(self) -> EtcdClient:
        """A client of the inventory's etcd ("discover" falls back to each host's :2379)."""
        e = self.inv.etcd
        endpoints = e.endpoints if isinstance(e.endpoints, list) else [
            f"https://{h.address}:{CLIENT_PORT}" for h in self.inv.control_plane]
        return EtcdClient(endpoints, e.ca, e.cert, e.key)
