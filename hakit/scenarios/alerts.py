"""The alert chain's scenarios (MON-D01): an HA component lost (an etcd member, a worker,
an apiserver), its alert followed from the fault to the pager and, after the restore,
back to resolved, every stage sampled (hakit.alerting.Follow)."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass

from kubernetes import client

from hakit import wait
from hakit.alerting import LABELS, Follow, Trail
from hakit.cluster import Cluster
from hakit.faults.base import Fault
from hakit.faults.kinds import Silence, StopComponent
from hakit.faults.nodes import pdb_shortfalls
from hakit.inventory import Inventory
from hakit.prometheus import Alertmanager, Prometheus, Receiver, ha_jobs
from hakit.scenarios import Inject
from hakit.snapshot import is_control_plane


class NoTarget(Exception):
    """The cluster has nothing this scenario could break (no worker to lose)."""


@dataclass(frozen=True)
class Scenario:
    name: str
    alert: str
    target: Callable[[Inventory, Cluster], str]
    fault: Callable[[Cluster, str], Fault]


def last_control_plane(inv: Inventory, control: Cluster) -> str:
    return inv.control_plane[-1].name


def affordable_worker(inv: Inventory, control: Cluster) -> str:
    """A worker whose loss every PDB can afford: this scenario is about the alert (WL-D01 is
    the one that asks whether the workloads can afford a node)."""
    core = client.CoreV1Api(control.api)
    workers = sorted(n.metadata.name for n in core.list_node().items if not is_control_plane(n))
    if not workers:
        raise NoTarget("the cluster has no worker node to lose")
    pdbs = client.PolicyV1Api(control.api).list_pod_disruption_budget_for_all_namespaces().items
    for name in workers:
        pods = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={name}").items
        if not pdb_shortfalls(pdbs, [p for p in pods if p.metadata.deletion_timestamp is None]):
            return name
    return workers[0]   # none can go: the guard's refusal names the PDB


SCENARIOS = [
    Scenario("etcd member stopped", "etcdMembersDown", last_control_plane,
             lambda c, h: StopComponent(c, h, "etcd")),
    Scenario("worker lost", "KubeNodeNotReady", affordable_worker,
             lambda c, h: StopComponent(c, h, "kubelet")),
    Scenario("apiserver stopped", "TargetDown", last_control_plane,
             lambda c, h: StopComponent(c, h, "kube-apiserver")),
]


class NotClear(AssertionError):
    """The alert was already pending or firing before the fault: nothing to measure from."""


def page(scenario: Scenario, inv: Inventory, control: Cluster, prometheus: Prometheus, alertmanager: Alertmanager,
         receiver: Receiver | None, inject: Inject, slo: float, clear_within: float, silenced: bool) -> Trail:
    """Inject the scenario's fault and follow its alert through every stage until it reached
    the receiver (or Alertmanager, where nobody is paged) or the SLO ran out; restore; follow
    it to resolved. With `silenced`, a silence of hakit's covers it, and a page is a failure."""
    delivered = bool(receiver) and not silenced
    host = scenario.target(inv, control)
    labels = LABELS[scenario.alert](host, ha_jobs(prometheus.targets()))
    follow = Follow(prometheus, alertmanager, receiver, scenario.alert, labels)
    try:
        wait.until(follow.clear, clear_within, f"{scenario.alert} {labels} to be clear before the fault", interval=2.0)
    except wait.WaitTimeout as e:
        raise NotClear(f"{e}: it is still {follow.in_prometheus() or follow.in_alertmanager()} from before, so "
                       "there is no steady state to measure from") from None
    with ExitStack() as stack:
        if silenced:
            stack.enter_context(Silence(control, alertmanager.url, {"alertname": scenario.alert, **labels}))
        stack.enter_context(follow)
        with inject(scenario.fault(control, host)) as fault:
            follow.follow(fault.describe(), fault.injected_at, slo, delivered)
        if not follow.trail.missed:
            follow.resolve(fault.restored_at, slo, delivered)
        if silenced:
            time.sleep(2)   # a page would have come within group_wait
            if "firing" in follow.pager.latest:
                raise AssertionError(f"{scenario.alert} paged the receiver despite hakit's silence")
    return follow.trail
