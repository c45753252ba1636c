"""What a disruptive check breaks, one class each: a component stopped or killed, a link
down, a partition, a drain, and what a check sets up (a probe namespace, a silence)."""

from __future__ import annotations

import time
import uuid

from kubernetes import client

from hakit.cluster import Cluster, Health
from hakit.cluster.network import LINK_FAULT_DELAY
from hakit.cluster.probes import READYZ
from hakit.etcd import Quorum
from hakit.faults.base import Fault
from hakit.faults.nodes import require_node_can_go
from hakit.prometheus import Alertmanager


class StopComponent(Fault):
    """`systemctl stop` for a unit, a parked manifest for a static pod; started again on exit."""

    def __init__(self, control: Cluster, host: str, component: str) -> None:
        super().__init__(control, host)
        self.component = component

    def describe(self) -> str:
        return f"stop {self.component} on {self.host}"

    def undo(self) -> dict:
        return {"kind": "start", "host": self.host, "component": self.component}

    def inject(self) -> None:
        self.control.stop(self.host, self.component)

    def cost_guard(self, health: list[Health]) -> None:
        if self.component == "etcd":
            q = Quorum.of(self.control.etcd_members())
            if q.tolerance < 1:
                raise self.refuse(f"{q.healthy} of {q.voters} voting etcd members are healthy; one fewer loses quorum")
        if self.component == "kube-apiserver":
            serving = [h.host for h in health if h.component == READYZ and h.ok]
            if serving == [self.host]:
                raise self.refuse("it is the last serving apiserver")
        if self.component in ("keepalived", "haproxy"):
            _require_vip_standby(self, health)
        if self.component == "kubelet":
            require_node_can_go(self)


class KillComponent(StopComponent):
    """SIGKILL: no goodbye (keepalived sends no priority-0 advert, a leader releases no Lease)."""

    def describe(self) -> str:
        return f"kill {self.component} on {self.host}"

    def inject(self) -> None:
        self.control.kill(self.host, self.component)


class LinkDown(Fault):
    """The host's link goes down for `seconds` and comes back by itself: a restore
    cannot travel over a link that is down."""

    def __init__(self, control: Cluster, host: str, seconds: float) -> None:
        super().__init__(control, host)
        self.seconds = seconds

    def describe(self) -> str:
        return f"take {self.host}'s link down for {self.seconds:g}s"

    def undo(self) -> dict:
        return {"kind": "wait_answering", "host": self.host, "timeout": self.seconds + 60}

    def inject(self) -> None:
        # The link goes down a fixed delay after the remote command starts, somewhere inside
        # the SSH round trip: until the host's own record is read, its middle is the estimate.
        before = time.monotonic()
        self.control.link_down(self.host, self.seconds)
        self.injected_at = (before + time.monotonic()) / 2 + LINK_FAULT_DELAY

    def took_effect(self) -> tuple[float, float] | None:
        """The host wrote its clock just before taking its link down (read once it is back)."""
        return self.control.fault_began(self.host)

    def cost_guard(self, health: list[Health]) -> None:
        _require_vip_standby(self, health)


class Partition(Fault):
    """Traffic to and from the other control-plane hosts dropped; the runner still reaches it."""

    def __init__(self, control: Cluster, host: str, seconds: float = 300) -> None:
        super().__init__(control, host)
        self.seconds = seconds

    def describe(self) -> str:
        return f"partition {self.host} from its peers"

    def undo(self) -> dict:
        return {"kind": "heal", "host": self.host}

    def inject(self) -> None:
        self.control.partition(self.host, self.seconds)

    def cost_guard(self, health: list[Health]) -> None:
        _require_vip_standby(self, health)


class Drain(Fault):
    """The node takes no new pods and the check evicts `deployments`' pods from it; on exit
    it is uncordoned and those Deployments, if the drain left all their replicas on one
    node, restarted to spread again. Journaled whole, so `hakit repair` after a crash
    undoes the lost spread too, not only the cordon."""

    def __init__(self, control: Cluster, host: str, deployments: set[tuple[str, str]]) -> None:
        super().__init__(control, host)
        self.deployments = deployments

    def describe(self) -> str:
        return f"drain node {self.host}"

    def undo(self) -> dict:
        return {"kind": "undrain", "host": self.host,
                "deployments": [f"{ns}/{name}" for ns, name in sorted(self.deployments)]}

    def inject(self) -> None:
        self.control.cordon(self.host)


class ProbeNamespace(Fault):
    """A namespace for a check's own probe workload: removed on exit, or by `hakit repair`."""

    def __init__(self, control: Cluster, namespace: str) -> None:
        super().__init__(control, host="")
        self.namespace = namespace

    def describe(self) -> str:
        return f"create namespace {self.namespace} for a probe workload"

    def undo(self) -> dict:
        return {"kind": "delete_namespace", "namespace": self.namespace}

    def guard(self) -> None:
        """Creating a namespace breaks nothing: no health gate."""

    def inject(self) -> None:
        client.CoreV1Api(self.control.api).create_namespace({"metadata": {"name": self.namespace,
                                                                         "labels": {"hakit.io/probe": "true"}}})


class Silence(Fault):
    """An Alertmanager silence for exactly the alerts a disruptive check expects, so on-call
    is not paged while the check still sees them arrive; expired on exit or by `hakit repair`."""

    def __init__(self, control: Cluster, alertmanager_url: str, matchers: dict[str, str]) -> None:
        super().__init__(control, host="")
        self.url, self.matchers = alertmanager_url, matchers
        self.comment = f"hakit disruptive check {uuid.uuid4().hex[:8]}: expected alerts, not an incident"

    def describe(self) -> str:
        return "silence " + ", ".join(f'{k}="{v}"' for k, v in self.matchers.items()) + " in Alertmanager"

    def undo(self) -> dict:
        return {"kind": "expire_silences", "url": self.url, "comment": self.comment}

    def guard(self) -> None:
        """A silence breaks nothing: no health gate."""

    def inject(self) -> None:
        Alertmanager(self.url).silence(self.matchers, hours=1, comment=self.comment)


def _require_vip_standby(fault: Fault, health: list[Health]) -> None:
    """The VIP may only be put at risk when another host can take it."""
    standby = [h.host for h in health if h.component == "keepalived" and h.ok and h.host != fault.host]
    if not standby:
        raise fault.refuse("no other host runs keepalived to take the VIP")


