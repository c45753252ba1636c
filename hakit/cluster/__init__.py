"""The cluster-operations layer: how hakit looks at and acts on one inventory's
cluster, as an operator would. Faults, runbooks and checks all go through here.

    cluster = Cluster(inventory)
    cluster.stop("cp3", "etcd")                 # components.py: kubeadm's way, or the template
    cluster.run("cp3", "cat %s", path)          # ssh.py: every argument quoted
    cluster.health()                            # probes.py: the steady state

Everything read from the cluster that reaches a host (a node's InternalIP, an
interface name) is validated first.
"""

from __future__ import annotations

import base64
import os
import shlex
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kubernetes import client
from kubernetes.client.rest import ApiException
from urllib3.exceptions import HTTPError

from hakit import hosts, kube, wait
from hakit.cluster import network, ssh
from hakit.cluster.components import CONTROL_PLANE_COMPONENTS, render
from hakit.cluster.probes import READYZ, Health, readyz
from hakit.errors import ConfigError, HakitError, UnreachableError
from hakit.etcd import EtcdClient, Member
from hakit.inventory import Inventory, ip
from hakit.prometheus import Alertmanager
from hakit.snapshot import Snapshot, node_is_ready

__all__ = ["Cluster", "ClusterId", "Health"]


@dataclass(frozen=True)
class ClusterId:
    """Who a cluster is: its kube-system namespace's UID and its etcd cluster id. What a
    fault journal entry is bound to, so a journal is never replayed on another cluster."""

    kube_system_uid: str = ""
    etcd_cluster_id: str = ""

    def differs(self, other: ClusterId) -> bool:
        pairs = [(self.kube_system_uid, other.kube_system_uid), (self.etcd_cluster_id, other.etcd_cluster_id)]
        return any(a and b and a != b for a, b in pairs)

    def __str__(self) -> str:
        return f"kube-system uid {self.kube_system_uid or '?'}, etcd cluster {self.etcd_cluster_id or '?'}"


class Cluster:
    """One inventory's cluster: its hosts over SSH, its API, its etcd."""

    def __init__(self, inv: Inventory) -> None:
        if inv.ssh is None and not inv.ansible_inventory:
            raise ConfigError("access: acting on hosts needs access.ssh or access.ansible in the inventory")
        self.inv = inv
        self.addresses = {h.name: h.address for h in inv.control_plane + inv.workers + inv.monitoring_hosts}
        self._hosts: dict[str, Any] = {}
        self._api: client.ApiClient | None = None
        self._identity: ClusterId | None = None
        self._etcd_endpoints: list[str] | None = None

    @property
    def identity(self) -> ClusterId:
        """This cluster's ClusterId, read once (what answers of it: a broken etcd leaves it blank)."""
        if self._identity is None:
            uid = etcd_id = ""
            try:
                uid = client.CoreV1Api(self.api).read_namespace("kube-system", _request_timeout=10).metadata.uid
            except (ApiException, HTTPError, OSError):
                pass
            for endpoint in self.etcd().endpoints:
                try:
                    etcd_id = self.etcd().status(endpoint).cluster_id
                    break
                except UnreachableError:
                    continue
            self._identity = ClusterId(uid or "", etcd_id)
        return self._identity

    @property
    def api(self) -> client.ApiClient:
        if self._api is None:
            self._api = kube.api_client(self.inv.kubeconfig, self.inv.context)
        return self._api

    # --- reaching hosts -----------------------------------------------------------------

    def host(self, name: str) -> Any:
        """A control-plane host of the inventory, or a node reached at its InternalIP."""
        if name not in self.addresses:
            self.addresses[name] = self._node_address(name)
        if name not in self._hosts:
            self._hosts[name] = ssh.connect(self.inv, name, self.addresses[name])
        return self._hosts[name]

    def _node_address(self, name: str) -> str:
        try:
            node = client.CoreV1Api(self.api).read_node(name)
        except ApiException as e:
            raise ConfigError(f"host {name[:60]!r}: not a control-plane host of the inventory, and no such node "
                              f"(HTTP {e.status})") from None
        for a in node.status.addresses or []:
            if a.type == "InternalIP":   # written by the node's own kubelet: untrusted
                return ip(a.address, f"node {name}: InternalIP")
        raise ConfigError(f"node {name}: has no InternalIP to reach it at")

    def run(self, host: str, template: str, *args: object) -> Any:
        """Run hakit's command template on the host, each argument shell-quoted."""
        return ssh.run(self.host(host), host, template, *args)

    def must(self, host: str, what: str, template: str, *args: object) -> str:
        """run(), raising one line that names what failed; returns stdout."""
        result = self.run(host, template, *args)
        if result.rc != 0:
            raise HakitError(f"{what} on {host} failed (exit {result.rc}): "
                             f"{(result.stderr or result.stdout).strip()[:200] or 'no output'}")
        return result.stdout

    # --- components -----------------------------------------------------------------------

    def _must_act(self, action: str, host: str, component: str, initial_cluster: str = "") -> None:
        self.must(host, f"{action} {component}",
                  render(self.inv.fault_control, action, host, component, initial_cluster))

    def stop(self, host: str, component: str) -> None:
        self._must_act("stop", host, component)

    def start(self, host: str, component: str) -> None:
        self._must_act("start", host, component)

    def kill(self, host: str, component: str) -> None:
        self._must_act("kill", host, component)

    def rejoin(self, host: str, initial_cluster: str) -> None:
        """Start the host's etcd, its data dir empty, as a member just added to the cluster."""
        self._must_act("rejoin", host, "etcd", initial_cluster)

    def is_active(self, host: str, component: str) -> bool:
        return self.run(host, render(self.inv.fault_control, "is-active", host, component)).rc == 0

    # --- files ------------------------------------------------------------------------------

    def read(self, host: str, path: str) -> str:
        result = self.run(host, "cat -- %s", path)
        if result.rc != 0:
            raise HakitError(f"host {host}: cannot read {path}: {result.stderr.strip()[:160]}")
        return result.stdout

    def write(self, host: str, path: str, text: str, mode: int = 0o644) -> None:
        """Replace a file on the host whole: created with its mode beside it (never readable
        by others in between), then renamed over it."""
        data = base64.b64encode(text.encode()).decode()
        self.must(host, f"writing {path}",
                  "mkdir -p -- \"$(dirname -- %s)\" && (umask 077; echo %s | base64 -d > %s) && chmod %s %s"
                  " && mv -- %s %s",
                  path, data, path + ".hakit-new", f"{mode:o}", path + ".hakit-new", path + ".hakit-new", path)

    def upload(self, host: str, local: Path | bytes, remote: str, mode: int = 0o600) -> None:
        """Copy a file (a snapshot: too big for a command line) or bytes (a secret: never on a
        command line) to the host through ssh's stdin, readable by its owner only until
        chmod, then renamed into place."""
        self.host(host)   # resolves a node's address
        staging = remote + ".hakit-new"
        if self.inv.ansible_inventory:
            self._ansible_copy(host, local, staging, mode)
        else:
            command = ssh_quote("mkdir -p -- \"$(dirname -- %s)\" && umask 077 && cat > %s && chmod %s %s",
                                staging, staging, f"{mode:o}", staging)
            argv = ssh.ssh_argv(self.inv.ssh, self.addresses[host], command)  # type: ignore[arg-type]
            if isinstance(local, bytes):
                done = subprocess.run(argv, input=local, capture_output=True, timeout=600)
            else:
                with local.open("rb") as f:
                    done = subprocess.run(argv, stdin=f, capture_output=True, timeout=600)
            if done.returncode != 0:
                raise HakitError(f"copying to {host}:{remote} failed: "
                                 f"{done.stderr.decode(errors='replace').strip()[:200]}")
        self.must(host, f"placing {remote}", "mv -- %s %s", staging, remote)

    def _ansible_copy(self, host: str, local: Path | bytes, dest: str, mode: int) -> None:
        if isinstance(local, Path):
            self._hosts[host].ansible("copy", f"src={local} dest={dest} mode={mode:o}", check=False)
            return
        with tempfile.TemporaryDirectory() as d:   # 0700: the bytes are a secret
            path = Path(d) / "content"
            path.write_bytes(local)
            self._hosts[host].ansible("copy", f"src={path} dest={dest} mode={mode:o}", check=False)

    def download(self, host: str, remote: str, local: Path) -> None:
        """Copy a file from the host (a kubeconfig, a client key) into a file only this user
        can read, in a directory only this user can enter, renamed into place whole."""
        text = self.read(host, remote)
        local.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        staging = local.with_name(f".{local.name}.hakit-new")
        staging.unlink(missing_ok=True)
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(staging, local)

    # --- network ------------------------------------------------------------------------------

    def vip_holders(self) -> list[str]:
        return [h.name for h in self.inv.control_plane if self.holds(h.name, self.inv.vip)]

    def one_vip_holder_for(self, seconds: float = network.VRRP_SETTLE) -> bool:
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

    def interface(self, host: str) -> str:
        out = self.run(host, "ip -o -4 addr show").stdout
        iface = hosts.interface_with(out, self.addresses[host])
        if iface is None:
            raise HakitError(f"host {host}: no interface carries {self.addresses[host]}")
        return network.interface(iface)

    def link_down(self, host: str, seconds: float) -> None:
        """The host's link goes down now and comes back by itself after `seconds`."""
        down, up = network.link_commands(self.interface(host))
        self.must(host, "scheduling a link fault", network.self_healing(down, up, seconds))

    def clock_offset(self, host: str) -> tuple[float, float]:
        """The host's clock minus this machine's, and its uncertainty: half the shortest of three
        round trips inside one open SSH session (a whole command's round trip includes the
        handshake, and the remote clock is read near its end, not its middle: 0.1 s of bias)."""
        self.host(host)   # resolves a node's address
        if self.inv.ssh is None:   # Ansible: one command's round trip is all there is
            sent = time.time()
            remote = float(self.must(host, "reading the clock", "date +%s.%N"))
            back = time.time()
            return remote - (sent + back) / 2, (back - sent) / 2
        argv = ssh.ssh_argv(self.inv.ssh, self.addresses[host],
                            "echo ready; for i in 1 2 3; do read x || exit; date +%s.%N; done")
        trips = []
        with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1) as proc:
            assert proc.stdin is not None and proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise UnreachableError(f"{host}: could not read its clock over SSH")
            for _ in range(3):
                sent = time.time()
                proc.stdin.write("\n")
                proc.stdin.flush()
                try:
                    remote = float(proc.stdout.readline())
                except ValueError:   # the session ended
                    raise UnreachableError(f"{host}: could not read its clock over SSH") from None
                trips.append((time.time() - sent, remote - (sent + time.time()) / 2))
        rtt, offset = min(trips)
        return offset, rtt / 2

    def fault_began(self, host: str) -> tuple[float, float]:
        """When the host's last self-healing fault began, by its own clock, as this machine's
        time.monotonic(), and the uncertainty of that (the bracket around the command on the
        host, plus the clock offset's)."""
        before, after = map(float, self.must(host, "reading when the fault began", "cat -- %s",
                                             network.FAULT_STAMP).split())
        offset, pm = self.clock_offset(host)
        return (before + after) / 2 - offset - (time.time() - time.monotonic()), pm + (after - before) / 2

    def partition(self, host: str, seconds: float) -> None:
        """Drop traffic between host and the other control-plane hosts; heals by itself
        after `seconds` if heal() never comes."""
        peers = [a for n, a in self.addresses.items() if n != host]
        script = network.partition_script(peers) + "; " + network.self_healing("true", network.HEAL, seconds)
        self.must(host, "partitioning", script)

    def heal(self, host: str) -> None:
        self.must(host, "healing a partition", network.HEAL)

    def wait_answering(self, host: str, timeout: float) -> None:
        """Until the host answers over SSH again (after a self-healing link fault)."""
        def answers() -> bool:
            try:
                return self.run(host, "true").rc == 0
            except UnreachableError:
                return False
        wait.until(answers, timeout, f"{host} to answer over SSH again", interval=1.0)

    # --- Kubernetes objects ---------------------------------------------------------------------

    def cordon(self, host: str) -> None:
        client.CoreV1Api(self.api).patch_node(host, {"spec": {"unschedulable": True}})

    def uncordon(self, host: str) -> None:
        client.CoreV1Api(self.api).patch_node(host, {"spec": {"unschedulable": None}})

    def undrain(self, host: str, deployments: list[str]) -> list[str]:
        """Undo a drain: the node takes pods again, and the Deployments it moved spread again
        (see kube.rebalance). Returns those restarted."""
        self.uncordon(host)
        return kube.rebalance(self.api, {tuple(d.split("/", 1)) for d in deployments})  # type: ignore[misc]

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

    # --- the steady state -------------------------------------------------------------------------

    def health(self) -> list[Health]:
        """Every control-plane component, as the host's service manager sees it, plus each
        apiserver's /readyz, each etcd member's health over the network, and every node Ready
        (a node can be left NotReady after a fault elsewhere, e.g. a client pinned to a broken
        apiserver)."""
        with ThreadPoolExecutor(max_workers=8) as pool:
            active = list(pool.map(self._active, [h.name for h in self.inv.control_plane]))
            serving = list(pool.map(self._serving, self.inv.control_plane))
        return [h for group in active + serving for h in group] + self._nodes()

    def disruptions_allowed(self) -> dict[str, int]:
        """Each PodDisruptionBudget's disruptions allowed now, by 'namespace/name': what a
        fault must give back before the next one (a budget still short after an outage makes
        the next node fault refuse, and a real drain hang). Not those of a namespace being
        deleted (a probe's, whose pods on a lost node go only when it returns): they never will."""
        pdbs = client.PolicyV1Api(self.api).list_pod_disruption_budget_for_all_namespaces(_request_timeout=10).items
        going = {n.metadata.name for n in client.CoreV1Api(self.api).list_namespace(_request_timeout=10).items
                 if n.status and n.status.phase == "Terminating"}
        return {f"{b.metadata.namespace}/{b.metadata.name}": (b.status.disruptions_allowed or 0) if b.status else 0
                for b in pdbs if b.metadata.namespace not in going}

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
                for c, code in zip(CONTROL_PLANE_COMPONENTS, codes, strict=False)]

    def _serving(self, h: Any) -> list[Health]:
        got = readyz(f"https://{h.address}:{self.inv.apiserver_port}")
        api = Health(h.name, READYZ, got == "ok", got)
        endpoint = self.etcd_endpoint(h.name)
        ok, why = self.etcd().health(endpoint) if endpoint else (True, "not an etcd member")
        return [api, Health(h.name, "etcd health", ok, why)]

    # --- etcd -----------------------------------------------------------------------------------

    def etcd_members(self) -> list[tuple[Member, bool]]:
        """(member, healthy) for every member etcd itself lists, learners included (they
        are marked; quorum is counted over voters only, see hakit.etcd.quorum)."""
        etcd = self.etcd()
        return [(m, any(etcd.health(url)[0] for url in m.client_urls)) for m in etcd.members()]

    def etcd_member_of(self, host: str) -> Member | None:
        """The member on this host, matched by its peer URL's host (names can lie or repeat)."""
        address = self.addresses[host]
        return next((m for m in self.etcd().members()
                     if any(urlsplit(u).hostname == address for u in m.peer_urls)), None)

    def etcd_endpoint(self, host: str) -> str | None:
        """The client URL of the host's own etcd member."""
        return next((e for e in self.etcd().endpoints if urlsplit(e).hostname == self.addresses[host]), None)

    def etcd(self) -> EtcdClient:
        """A client of the inventory's etcd ("discover": what the etcd pods advertise, read once)."""
        e = self.inv.etcd
        if isinstance(e.endpoints, list):
            return EtcdClient(e.endpoints, e.ca, e.cert, e.key)
        if self._etcd_endpoints is None:
            self._etcd_endpoints = Snapshot(self.api).etcd_endpoints()
        return EtcdClient(self._etcd_endpoints, e.ca, e.cert, e.key)


def ssh_quote(template: str, *args: str) -> str:
    """template with each argument shell-quoted, as testinfra's run does it."""
    return template % tuple(shlex.quote(a) for a in args)
