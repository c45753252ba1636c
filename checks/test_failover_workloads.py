"""Disruptive: pods are rescheduled when a worker is lost, and a drain respects PDBs.

The kit deploys its own probe workload in a namespace of its own (a Deployment
spread across the workers, behind a PDB), breaks a worker that runs replicas of
it, and measures until every replica is Running elsewhere. The namespace is
journaled like a fault: removed on exit, or by `hakit repair` after a crash.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hakit.cluster import Cluster
from hakit.fixtures.disruption import Alerts, Inject
from hakit.inventory import Inventory
from hakit.model import Evidence, check
from hakit.scenarios.workloads import (
    TOLERATION_SECONDS,
    DrainRefused,
    Probe,
    drain_worker,
    lose_worker,
    probe_workload,
)

REMEDIATION = """Run kube-controller-manager with a --node-monitor-grace-period that fits the SLO
(50 s by default since Kubernetes 1.32) and give critical pods tolerations for
node.kubernetes.io/unreachable and not-ready with a short tolerationSeconds (the default is
300 s); keep spare capacity on the other workers, and replace or return a lost node with
`hakit runbook run node-drain-replace`."""


@pytest.fixture
def probe(control: Cluster, inventory: Inventory) -> Iterator[Probe]:
    """The probe workload, ready on the workers (hakit.scenarios.workloads)."""
    with probe_workload(control, inventory) as p:
        yield p


@check("WL-D01", "Pods of a lost worker are replaced and Running on other nodes within the SLO",
       property="workloads", disruptive="pod-rescheduling", runbook="node-drain-replace", remediation=REMEDIATION)
def test_pods_are_rescheduled_when_a_worker_is_lost(inventory: Inventory, control: Cluster, probe: Probe,
                                                   inject: Inject, evidence: Evidence, alerts: Alerts) -> None:
    """A node dies with its pods: the control plane must notice, evict and place them elsewhere."""
    slo = inventory.slo.pod_rescheduling_seconds
    evidence.deadline = (slo, "slo.pod_rescheduling_seconds")
    loss = lose_worker(inventory, control, probe, inject, evidence, alerts, within=slo * 2)
    took = loss.replaced - loss.t0
    met = evidence.within("replicas Running elsewhere", took, slo, "pod_rescheduling_seconds",
                          "after the node was lost")
    evidence.record("detection", f"NotReady after {loss.lost - loss.t0:.1f} s; evicted after "
                    f"{loss.evicted - loss.t0:.1f} s (probe tolerates unreachable for {TOLERATION_SECONDS} s; pods "
                    "left at the default wait 300 s)")
    evidence.record("stuck Terminating on the lost node",
                    f"{len(loss.stuck)} pod(s): {', '.join(loss.stuck) or 'none'}; they go when its kubelet returns, "
                    "or with `kubectl delete pod --force --grace-period=0` once the node is known to be dead")
    assert met, (f"the probe's pods on {loss.victim} were Running elsewhere {took:.1f} s after the node was "
                 f"lost; the SLO is {slo:g} s (NotReady after {loss.lost - loss.t0:.1f} s)")


@check("WL-D02", "A worker drains through the eviction API within the SLO, honouring every PDB",
       property="workloads", disruptive="pod-rescheduling", runbook="node-drain-replace", remediation="""A drain
       that hangs means a PDB allows no disruption (too few replicas, or minAvailable equal to replicas);
       give every workload on the node at least one replica more than its PDB requires, and run bare
       pods under a controller. The drain's refusals are named: fix those before the maintenance.""")
def test_a_worker_drains_honouring_every_pdb(inventory: Inventory, control: Cluster, probe: Probe,
                                            inject: Inject, evidence: Evidence) -> None:
    """Maintenance is a drain of a real node, as `kubectl drain --ignore-daemonsets` does it:
    every pod it would evict, through the eviction API, retried while a PDB says 429 until the
    SLO; it must finish, the probe (behind its PDB) must never drop below it, and the node is
    uncordoned, and what the drain left on one node spread again, whatever happens (or by
    `hakit repair` after a crash)."""
    slo = inventory.slo.pod_rescheduling_seconds
    evidence.deadline = (slo, "slo.pod_rescheduling_seconds")
    try:
        run = drain_worker(inventory, control, probe, inject, evidence, within=slo)
    except DrainRefused as e:
        pytest.fail(str(e), pytrace=False)
    met = evidence.within("drain", run.seconds, slo, "pod_rescheduling_seconds", f"{run.evicted} pods off {run.node}")
    evidence.record("fewest probe pods Running during the drain", run.fewest, f"≥ {probe.replicas - 1} (the PDB)",
                    run.fewest >= probe.replicas - 1)
    evidence.record("evictions a PDB refused (then retried)", run.refused)
    assert run.fewest >= probe.replicas - 1, \
        f"only {run.fewest} of {probe.replicas} probe pods ran during the drain: the PDB was not honoured"
    assert met, f"the drain of {run.node} took {run.seconds:.1f} s; the SLO is {slo:g} s"
