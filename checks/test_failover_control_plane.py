"""Disruptive: another controller-manager or scheduler takes over when the leader dies.

The leader is killed (SIGKILL: it releases nothing, as in a crash or a host loss),
so no one can take the Lease before it expires: what is measured is the real
leader-election timing of the cluster, lease duration and retry period included. The
new leader is whoever takes it: a standby on another host, or, on a kubeadm host, the
instance the kubelet restarted in the killed one's place (a new identity, the same host);
the evidence says which. That standbys are alive to take it is CP-002/CP-003's to judge.
"""

from __future__ import annotations

from kubernetes import client

from hakit.cluster import Cluster
from hakit.fixtures.disruption import Inject
from hakit.inventory import Inventory
from hakit.model import Evidence, check
from hakit.scenarios.control_plane import kill_leader

REMEDIATION = """Run kube-controller-manager and kube-scheduler on every control-plane host with
--leader-elect=true (kubeadm's default) and leader-election timings that fit the SLO (lease
duration 15 s, renew deadline 10 s, retry period 2 s by default); a component that does not take
over is restarted with `hakit runbook run control-plane-restart`."""


def leader_takeover(component: str, inv: Inventory, kube_api: client.ApiClient, control: Cluster,
                    inject: Inject, evidence: Evidence) -> None:
    """The leader killed (hakit.scenarios.control_plane), judged: a new one within the SLO."""
    slo = inv.slo.controller_failover_seconds
    evidence.deadline = (slo, "slo.controller_failover_seconds")
    took = kill_leader(component, inv, kube_api, control, inject, evidence, within=max(slo * 2, 90))
    assert evidence.within(f"{component} takeover", took.seconds, slo, "controller_failover_seconds",
                           f"{took.old} → {took.new}"), \
        f"a new {component} took the Lease {took.seconds:.1f} s after {took.old}'s died; SLO {slo:g} s"


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
