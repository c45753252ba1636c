"""Disruptive: another controller-manager or scheduler takes over when the leader dies.

The leader is killed (SIGKILL: it releases nothing, as in a crash or a host loss),
so no one can take the Lease before it expires: what is measured is the real
leader-election timing of the cluster, lease duration and retry period included. The
new leader is whoever takes it: a standby on another host, or, on a kubeadm host, the
instance the kubelet restarted in the killed one's place (a new identity, the same host);
the evidence says which. That standbys are alive to take it is CP-002/CP-003's to judge.
"""

from __future__ import annotations

import time

from kubernetes import client

from hakit import wait
from hakit.cluster import Cluster
from hakit.faults.kinds import KillComponent
from hakit.fixtures.disruption import Inject
from hakit.inventory import Inventory
from hakit.measure import Watch, time_zero
from hakit.model import Evidence, check

REMEDIATION = """Run kube-controller-manager and kube-scheduler on every control-plane host with
--leader-elect=true (kubeadm's default) and leader-election timings that fit the SLO (lease
duration 15 s, renew deadline 10 s, retry period 2 s by default); a component that does not take
over is restarted with `hakit runbook run control-plane-restart`."""


def holder_host(identity: str | None) -> str | None:
    """Leader-election identities are HOSTNAME_UUID; the hostname is the host's name."""
    return identity.split("_", 1)[0] if identity else None


def leader_takeover(component: str, inv: Inventory, kube_api: client.ApiClient, control: Cluster,
                    inject: Inject, evidence: Evidence) -> None:
    leases = client.CoordinationV1Api(kube_api)
    slo = inv.slo.controller_failover_seconds
    evidence.deadline = (slo, "slo.controller_failover_seconds")

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
    assert old in {h.name for h in inv.control_plane}, (
        f"the {component} Lease is held by {old!r}, not by a control-plane host of the inventory")
    with Watch(f"{component} Lease holder", holder) as lease:
        with inject(KillComponent(control, old, component)) as fault:
            new_at = lease.wait(lambda v: isinstance(v, str) and v != old_identity, fault.injected_at, max(slo * 2, 90),
                                f"a new {component} to take the Lease from {old}")
            new = holder_host(lease.latest)
            how = "restarted on the same host by its kubelet" if new == old else "a standby"
            evidence.event(f"Lease taken by {new} ({how})", new_at, True)
    # Nothing here sees a process die: the fault took effect between sending the kill and its return.
    t0, pm, how = time_zero(fault.injected_at, fault.returned_at, fault.took_effect(), [])
    evidence.took_effect(t0, pm, how)
    takeover = new_at - t0
    assert evidence.within(f"{component} takeover", takeover, slo, "controller_failover_seconds", f"{old} → {new}"), \
        f"a new {component} took the Lease {takeover:.1f} s after {old}'s died; SLO {slo:g} s"


@check("CP-D01", "A new kube-controller-manager takes the Lease within the SLO when the leader dies",
       property="control-plane", disruptive="control-plane-failover", runbook="control-plane-restart",
       remediation=REMEDIATION)
def test_controller_manager_takes_over(inventory: Inventory, kube_api: client.ApiClient, control: Cluster,
                                       inject: Inject, evidence: Evidence) -> None:
    """Without a controller-manager nothing reconciles: no pod replaced, no node marked NotReady."""
    leader_takeover("kube-controller-manager", inventory, kube_api, control, inject, evidence)


@check("CP-D02", "A new kube-scheduler takes the Lease within the SLO when the leader dies",
       property="control-plane", disruptive="control-plane-failover", runbook="control-plane-restart",
       remediation=REMEDIATION)
def test_scheduler_takes_over(inventory: Inventory, kube_api: client.ApiClient, control: Cluster,
                              inject: Inject, evidence: Evidence) -> None:
    """Without a scheduler, replaced pods stay Pending however many nodes are free."""
    leader_takeover("kube-scheduler", inventory, kube_api, control, inject, evidence)
