"""Disruptive: when an HA component fails, the right alert reaches a human in bounded
time, and clears when it is fixed.

Each scenario injects a fault and follows the alert through every stage, sampled
every 100 ms: pending and firing in Prometheus, active in Alertmanager, delivered
to the receiver (a test receiver named in the inventory, e.g. hakit.lab.pager),
then, after the restore, resolved. The delays are compared with the SLO and with
the lower bound the rule's `for:` sets. With --silence (hakit audit --disruptive
--silence) the expected alerts are silenced for the check's duration: they must
still reach Alertmanager (suppressed), and the receiver must not be paged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client

from hakit.fixtures.disruption import Inject
from hakit import wait
from hakit.faults import Fault, Silence, StopComponent
from hakit.cluster import Cluster
from hakit.faults.nodes import pdb_shortfalls
from hakit.inventory import Inventory
from hakit.measure import Watch
from hakit.model import Evidence, check
from hakit.prometheus import Alertmanager, Prometheus, Receiver, duration_seconds, ha_jobs
from hakit.snapshot import is_control_plane

REMEDIATION = """Load hakit/rules/ha-alerts.yaml into Prometheus, scrape every HA component, and route
its alerts in Alertmanager to a receiver a human watches; keep `for:` plus scrape and evaluation
intervals plus group_wait inside the alert-delivery SLO. A missing stage names where the chain breaks."""


@dataclass(frozen=True)
class Scenario:
    name: str
    alert: str
    labels: Callable[[str, dict[str, str]], dict[str, str]]   # (target, {component: job}) -> the alert's labels
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
        pytest.skip("the cluster has no worker node to lose")
    pdbs = client.PolicyV1Api(control.api).list_pod_disruption_budget_for_all_namespaces().items
    for name in workers:
        pods = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={name}").items
        if not pdb_shortfalls(pdbs, [p for p in pods if p.metadata.deletion_timestamp is None]):
            return name
    return workers[0]   # none can go: the guard's refusal names the PDB


SCENARIOS = [
    Scenario("etcd member stopped", "etcdMembersDown", lambda h, jobs: {"job": jobs.get("etcd", "etcd")},
             last_control_plane,
             lambda c, h: StopComponent(c, h, "etcd")),
    Scenario("worker lost", "KubeNodeNotReady", lambda h, jobs: {"node": h}, affordable_worker,
             lambda c, h: StopComponent(c, h, "kubelet")),
    Scenario("apiserver stopped", "TargetDown", lambda h, jobs: {"job": jobs.get("kube-apiserver", "apiserver")},
             last_control_plane,
             lambda c, h: StopComponent(c, h, "kube-apiserver")),
]


def matches(alert: dict[str, Any], name: str, labels: dict[str, str]) -> bool:
    return alert["labels"].get("alertname") == name and all(alert["labels"].get(k) == v for k, v in labels.items())


@pytest.fixture
def receiver(inventory: Inventory) -> Receiver | None:
    return Receiver(inventory.receiver_url) if inventory.receiver_url else None


@check("MON-D01", "A lost HA component's alert reaches the receiver within the SLO and resolves after the fix",
       property="monitoring", disruptive="alert-delivery", remediation=REMEDIATION)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.alert for s in SCENARIOS])
def test_an_ha_failure_pages_and_clears(scenario: Scenario, inventory: Inventory, control: Cluster,
                                        prometheus: Prometheus, alertmanager: Alertmanager,
                                        receiver: Receiver | None, inject: Inject, evidence: Evidence,
                                        pytestconfig: pytest.Config) -> None:
    """An alert rule nobody receives is not monitoring: follow one alert from fault to pager and back."""
    slo = inventory.slo.alert_delivery_seconds
    evidence.deadline = (slo, "slo.alert_delivery_seconds")
    host = scenario.target(inventory, control)
    labels = scenario.labels(host, ha_jobs(prometheus.targets()))
    rule = next((r for r in prometheus.rules() if r.get("name") == scenario.alert), None)
    assert rule, f"Prometheus has no rule {scenario.alert}: load hakit/rules/ha-alerts.yaml"
    bound = float(rule.get("duration", 0))
    cfg = prometheus.config().get("global", {})
    upper = bound + duration_seconds(cfg.get("scrape_interval", "1m")) + duration_seconds(
        cfg.get("evaluation_interval", "1m"))
    silenced = pytestconfig.getoption("--hakit-silence")
    since = time.time()

    def in_prometheus() -> str | None:
        states = [a["state"] for a in prometheus.alerts() if matches(a, scenario.alert, labels)]
        return "firing" if "firing" in states else "pending" if states else None

    def in_alertmanager() -> str | None:
        found = [a["status"]["state"] for a in alertmanager.alerts(filter=f'alertname="{scenario.alert}"')
                 if matches(a, scenario.alert, labels)]
        return found[0] if found else None

    def paged() -> set[str]:
        """Statuses (firing, resolved) the receiver got for this alert since the check began."""
        return {n["status"] for at, n in receiver.notifications() if at >= since  # type: ignore[union-attr]
                for a in n.get("alerts", []) if matches(a, scenario.alert, labels) and a["status"] == n["status"]}

    # Steady state: the alert is not already on its way. One still firing from an earlier fault
    # (the target recovered, the alert not yet resolved) would make every stage look instant.
    try:
        wait.until(lambda: in_prometheus() is None and in_alertmanager() is None, bound + upper + slo,
                   f"{scenario.alert} {labels} to be clear before the fault", interval=2.0)
    except wait.WaitTimeout as e:
        pytest.fail(f"{e}: it is still {in_prometheus() or in_alertmanager()} from before, so there is no "
                    "steady state to measure from", pytrace=False)
    evidence.record("before the fault", "clear in Prometheus and Alertmanager", "clear", True)

    with ExitStack() as stack:
        if silenced:
            stack.enter_context(Silence(control, alertmanager.url, {"alertname": scenario.alert, **labels}))
        prom = stack.enter_context(Watch("alert in Prometheus", in_prometheus))
        am = stack.enter_context(Watch("alert in Alertmanager", in_alertmanager))
        pager = stack.enter_context(Watch("receiver", paged if receiver else lambda: set()))
        with inject(scenario.fault(control, host)) as fault:
            t0 = fault.injected_at

            def stage(watch: Watch, reached: Callable[[Any], bool], what: str, after: float = t0) -> float:
                """When the alert reached a stage; a stage not reached within the SLO fails the
                check there, which names where the chain from fault to pager breaks."""
                try:
                    at = watch.wait(reached, after, max(slo - (time.monotonic() - t0), 1.0), what)
                except wait.WaitTimeout:
                    seen = "; ".join(f"{e.what} at {e.at:.0f} s" for e in evidence.timeline[1:]) or "no stage"
                    pytest.fail(f"{what} not within the {slo:g} s SLO after '{fault.describe()}' ({seen})",
                                pytrace=False)
                evidence.event(what, at, True)
                return at

            stage(prom, lambda v: v in ("pending", "firing"), f"{scenario.alert} pending in Prometheus")
            firing = stage(prom, lambda v: v == "firing", f"{scenario.alert} firing in Prometheus")
            arrived = stage(am, lambda v: v in ("active", "suppressed"), f"{scenario.alert} in Alertmanager")
            want = "suppressed" if silenced else "active"
            evidence.record("state in Alertmanager", am.latest, want + (" (hakit's silence)" if silenced else ""),
                            am.latest == want)
            assert am.latest == want, f"{scenario.alert} is {am.latest} in Alertmanager, expected {want}"
            if receiver and not silenced:
                delivered = stage(pager, lambda v: "firing" in v, f"{scenario.alert} delivered to the receiver")
        undone = fault.restored_at
        resolved = prom.wait(lambda v: v is None, undone, slo, f"{scenario.alert} to resolve in Prometheus")
        evidence.event("resolved in Prometheus", resolved, True)
        if receiver and not silenced:
            cleared = pager.wait(lambda v: "resolved" in v, undone, slo, "the resolved notification")
            evidence.event("resolved notification delivered", cleared, True)
        if silenced:
            time.sleep(2)   # a page would have come within group_wait
            assert "firing" not in pager.latest, f"{scenario.alert} paged the receiver despite hakit's silence"
    firing_s = firing - t0
    evidence.record("firing", f"{firing_s:.1f} s after the fault",
                    f"≥ {bound:g} s (the rule's for:); {upper - bound:g} s more of scrape and evaluation once the "
                    "condition holds", firing_s >= bound)
    assert firing_s >= bound, f"{scenario.alert} fired {firing_s:.1f} s after the fault, before its for: of {bound:g} s"
    if receiver and not silenced:
        took = delivered - t0
        assert evidence.within("delivered", took, slo, "alert_delivery_seconds", "after the fault"), \
            f"{scenario.alert} reached the receiver {took:.1f} s after the fault; the SLO is {slo:g} s"
    else:
        took = arrived - t0
        assert evidence.within("in Alertmanager", took, slo, "alert_delivery_seconds", "after the fault; " + (
            "silenced: nobody paged" if silenced else "no monitoring.receiver in the inventory to time delivery")), \
            f"{scenario.alert} reached Alertmanager {took:.1f} s after the fault; SLO {slo:g} s"
    evidence.record("resolved", f"{resolved - undone:.1f} s after the restore")
