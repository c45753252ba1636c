"""The cluster-operations layer: how hakit looks at and acts on one inventory's
cluster, as an operator would. Faults, runbooks and checks all go through here. One
Cluster object, one module per resource it reaches:

    cluster = Cluster(inventory)
    cluster.run("cp3", "cat %s", path)          # access.py: hosts, API, etcd; every argument quoted
    cluster.stop("cp3", "etcd")                 # services.py: kubeadm's way, or the template
    cluster.write("cp3", path, text)            # files.py
    cluster.vip_holders()                       # network.py: VIP, links, partitions, clocks
    cluster.cordon("w1")                        # objects.py: what a fault changes in the API
    cluster.health()                            # steady.py: the steady state

Everything read from the cluster that reaches a host (a node's InternalIP, an
interface name) is validated first.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes import client
from kubernetes.client.rest import ApiException
from urllib3.exceptions import HTTPError

from hakit.cluster.files import Files
from hakit.cluster.network import Network
from hakit.cluster.objects import Objects
from hakit.cluster.probes import Health
from hakit.cluster.services import Services
from hakit.cluster.steady import SteadyState
from hakit.errors import UnreachableError
from hakit.inventory import Inventory

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


class Cluster(Services, Files, Network, Objects, SteadyState):
    """One inventory's cluster: its hosts over SSH, its API, its etcd, and what hakit does there."""

    def __init__(self, inv: Inventory) -> None:
        super().__init__(inv)
        self._identity: ClusterId | None = None

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
