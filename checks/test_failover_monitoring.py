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

import pytest

from hakit.alerting import HELD, Trail
from hakit.cluster import Cluster
from hakit.fixtures.disruption import Inject
from hakit.inventory import Inventory
from hakit.model import Evidence, check
from hakit.prometheus import Alertmanager, Prometheus, Receiver, duration_seconds
from hakit.scenarios.alerts import SCENARIOS, NoTarget, NotClear, Scenario, page

REMEDIATION = """Load hakit/rules/ha-alerts.yaml into Prometheus, scrape every HA component, and route
its alerts in Alertmanager to a receiver a human watches; keep `for:` plus scrape and evaluation
intervals plus group_wait inside the alert-delivery SLO. A missing stage names where the chain breaks."""


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
    rule = next((r for r in prometheus.rules() if r.get("name") == scenario.alert), None)
    assert rule, f"Prometheus has no rule {scenario.alert}: load hakit/rules/ha-alerts.yaml"
    bound = float(rule.get("duration", 0))
    cfg = prometheus.config().get("global", {})
    upper = bound + duration_seconds(cfg.get("scrape_interval", "1m")) + duration_seconds(
        cfg.get("evaluation_interval", "1m"))
    silenced = pytestconfig.getoption("--hakit-silence")
    delivered = bool(receiver) and not silenced
    held = pytestconfig.stash.get(HELD, {}).pop(scenario.alert, None)
    if held is not None:   # followed in another check's fault of the same kind: judge that
        try:
            trail = held.trail if held.trail.missed else held.resolve(held.trail.restored, slo, delivered)
        finally:
            held.close()
        evidence.fault(f"{trail.fault} (held by {trail.host_check})", trail.t0)
    else:
        try:
            trail = page(scenario, inventory, control, prometheus, alertmanager, receiver, inject, slo,
                         clear_within=bound + upper + slo, silenced=silenced)
        except NoTarget as e:
            pytest.skip(str(e))
        except NotClear as e:
            pytest.fail(str(e), pytrace=False)
        evidence.record("before the fault", "clear in Prometheus and Alertmanager", "clear", True)
    judge(trail, evidence, slo, bound, upper, silenced, delivered)


def judge(trail: Trail, evidence: Evidence, slo: float, bound: float, upper: float, silenced: bool,
          delivered: bool) -> None:
    """Each stage on the timeline; the first one missed fails the check there, naming where
    the chain from fault to pager breaks; firing no earlier than the rule's for:, delivery
    (or arrival in Alertmanager) within the SLO."""
    for what, at in trail.stages:
        evidence.event(what, at, True)
    if trail.missed:
        seen = "; ".join(f"{e.what} at {e.at:.0f} s" for e in evidence.timeline[1:]) or "no stage"
        pytest.fail(f"{trail.missed} not within the {slo:g} s SLO after '{trail.fault}' ({seen})", pytrace=False)
    want = "suppressed" if silenced else "active"
    evidence.record("state in Alertmanager", trail.am_state, want + (" (hakit's silence)" if silenced else ""),
                    trail.am_state == want)
    assert trail.am_state == want, f"{trail.alert} is {trail.am_state} in Alertmanager, expected {want}"
    firing_s = (trail.at(f"{trail.alert} firing in Prometheus") or 0.0) - trail.t0
    evidence.record("firing", f"{firing_s:.1f} s after the fault",
                    f"≥ {bound:g} s (the rule's for:); {upper - bound:g} s more of scrape and evaluation once the "
                    "condition holds", firing_s >= bound)
    assert firing_s >= bound, f"{trail.alert} fired {firing_s:.1f} s after the fault, before its for: of {bound:g} s"
    if delivered:
        took = (trail.at(f"{trail.alert} delivered to the receiver") or 0.0) - trail.t0
        assert evidence.within("delivered", took, slo, "alert_delivery_seconds", "after the fault"), \
            f"{trail.alert} reached the receiver {took:.1f} s after the fault; the SLO is {slo:g} s"
    else:
        took = (trail.at(f"{trail.alert} in Alertmanager") or 0.0) - trail.t0
        assert evidence.within("in Alertmanager", took, slo, "alert_delivery_seconds", "after the fault; " + (
            "silenced: nobody paged" if silenced else "no monitoring.receiver in the inventory to time delivery")), \
            f"{trail.alert} reached Alertmanager {took:.1f} s after the fault; SLO {slo:g} s"
    for stage, at in (("Prometheus", trail.resolved), ("Alertmanager", trail.resolved_in_am)):
        if at is None:
            pytest.fail(f"{trail.alert} did not resolve in {stage} within {slo:g} s of the restore", pytrace=False)
        evidence.event(f"resolved in {stage}", at, True)
    evidence.record("resolved", f"{trail.resolved_in_am - trail.restored:.1f} s after the restore (Alertmanager)")
    if delivered:   # evidence, not the verdict: receivers that resolve by themselves never ask for it
        got = trail.resolved_delivered
        evidence.record("resolved notification at the receiver",
                        f"{got - trail.restored:.1f} s after the restore" if got is not None else
                        f"none within {slo:g} s (Alertmanager had resolved it)", "sent where send_resolved is set",
                        got is not None)
        if got is not None:
            evidence.event("resolved notification delivered", got, True)
