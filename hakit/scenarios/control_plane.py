"""The controllers' scenario: the kube-controller-manager's or kube-scheduler's leader
killed (SIGKILL: it releases nothing, as in a crash or a host loss), its Lease watched
until someone else holds it (CP-D01, CP-D02)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from kubernetes import client

from hakit import wait
from hakit.cluster import Cluster
from hakit.faults.kinds import KillComponent
from hakit.inventory import Inventory
from hakit.measure import Watch, time_zero
from hakit.model import Evidence
from hakit.scenarios import Inject


def holder_host(identity: str | None) -> str | None:
    """Leader-election identities are HOSTNAME_UUID; the hostname is the host's name."""
    return identity.split("_", 1)[0] if identity else None


@dataclass(frozen=True)
class Takeover:
    old: str
    new: str | None
    seconds: float   # from the kill's effect to the Lease held by another identity


def kill_leader(component: str, inv: Inventory, kube_api: client.ApiClient, control: Cluster, inject: Inject,
                evidence: Evidence, within: float) -> Takeover:
    """Kill the component's leader while it renews its Lease and wait (`within` seconds at
    most) until another identity holds it: a standby, or, on a kubeadm host, the instance the
    kubelet restarted in the killed one's place (a new identity on the same host)."""
    leases = client.CoordinationV1Api(kube_api)

    def holder() -> str | None:
        """The full identity (HOSTNAME_UUID): a restarted instance on the same host is a new one."""
        return leases.read_namespaced_lease(component, "kube-system", _request_timeout=2).spec.holder_identity

    def live_holder() -> str | None:
        """The holder, while it renews the Lease (within half its duration): one that stopped
        renewing is about to be replaced (its host was cut off a moment ago, by an earlier
        check), and killing it would measure that handover, not this fault's."""
        lease = leases.read_namespaced_lease(component, "kube-system", _request_timeout=2).spec
        age = time.time() - lease.renew_time.timestamp() if lease.renew_time else float("inf")
        return lease.holder_identity if age < (lease.lease_duration_seconds or 15) / 2 else None

    old_identity = wait.until(live_holder, 60, f"a {component} leader renewing its Lease", interval=1.0)
    old = holder_host(old_identity)
    if old not in {h.name for h in inv.control_plane}:
        raise AssertionError(f"the {component} Lease is held by {old!r}, not by a control-plane host of the inventory")
    with Watch(f"{component} Lease holder", holder) as lease:
        with inject(KillComponent(control, old, component)) as fault:
            new_at = lease.wait(lambda v: isinstance(v, str) and v != old_identity, fault.injected_at, within,
                                f"a new {component} to take the Lease from {old}")
            new = holder_host(lease.latest)
            how = "restarted on the same host by its kubelet" if new == old else "a standby"
            evidence.event(f"Lease taken by {new} ({how})", new_at, True)
    # Nothing here sees a process die: the fault took effect between sending the kill and its return.
    t0, pm, how = time_zero(fault.injected_at, fault.returned_at, fault.took_effect(), [])
    evidence.took_effect(t0, pm, how)
    return Takeover(old, new, new_at - t0)
