"""Reaching one inventory's cluster: its hosts over SSH (or Ansible), its API, its etcd.
The base every part of Cluster stands on; each command is one of hakit's templates with
every argument quoted (ssh.py), and an address read from the cluster is validated first."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from kubernetes import client
from kubernetes.client.rest import ApiException

from hakit import kube
from hakit.cluster import ssh
from hakit.errors import ConfigError, HakitError
from hakit.etcd import EtcdClient, Member
from hakit.inventory import Inventory
from hakit.snapshot import Snapshot
from hakit.validate import ip


class Access:
    """One inventory's cluster: its hosts over SSH, its API, its etcd."""

    def __init__(self, inv: Inventory) -> None:
        if inv.ssh is None and not inv.ansible_inventory:
            raise ConfigError("access: acting on hosts needs access.ssh or access.ansible in the inventory")
        self.inv = inv
        self.addresses = {h.name: h.address for h in inv.control_plane + inv.workers + inv.monitoring_hosts}
        self._hosts: dict[str, Any] = {}
        self._api: client.ApiClient | None = None
        self._etcd_endpoints: list[str] | None = None

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
