"""Control plane: more than one apiserver serves, and controller-manager and
scheduler each run more than once with a live leader Lease."""

from __future__ import annotations

import time

from kubernetes import client

from hakit.cluster.probes import readyz
from hakit.inventory import Inventory
from hakit.model import Evidence, check
from hakit.snapshot import Snapshot


@check("CP-001", "At least two apiservers serve", property="control-plane", runbook="control-plane-restart",
       remediation="""Restart the apiservers that do not answer /readyz (runbook control-plane-restart);
with one left, any failure of it is an outage.""")
def test_two_apiservers_serve(inventory: Inventory, kube_api: client.ApiClient, evidence: Evidence) -> None:
    """One serving apiserver is a single point of failure."""
    serving = [h.name for h in inventory.control_plane
               if readyz(f"https://{h.address}:{inventory.apiserver_port}", kube_api.configuration.ssl_ca_cert,
                         timeout=5) == "ok"]
    evidence.record("serving apiservers", serving or "none", expected="≥ 2")
    if len(serving) < 2:
        for h in inventory.control_plane:
            if h.name not in serving:
                evidence.about(h.name, "kube-apiserver")
    assert len(serving) >= 2, f"only {len(serving)} apiserver(s) serve: {', '.join(serving) or 'none'}"


def _leader_check(component: str, snapshot: Snapshot, inventory: Inventory, evidence: Evidence,
                  instances: dict[str, str]) -> None:
    """A live leader (its Lease renewed within its duration) and an instance serving on every
    control-plane host; every problem found is named."""
    problems = []
    down = {h: why for h, why in instances.items() if why != "ok"}
    for h in down:
        evidence.about(h, component)
    evidence.record(f"{component} /healthz per host", instances, expected="ok on every control-plane host")
    lease = snapshot.kube_system_leases.get(component)
    if lease is None or not lease.spec.holder_identity:
        problems.append(f"no {component} Lease is held: no leader")
    else:
        age = time.time() - lease.spec.renew_time.timestamp()
        limit = lease.spec.lease_duration_seconds + inventory.thresholds.lease_slack_seconds
        evidence.record(f"{component} leader", lease.spec.holder_identity.split("_")[0])
        evidence.record("lease renewed", f"{age:.1f} s ago", expected=f"< {limit:g} s", ok=age < limit)
        if age >= limit:
            problems.append(f"the {component} Lease was last renewed {age:.0f} s ago (> {limit:g} s): "
                            "the leader is stuck or gone")
    if down:
        problems.append(f"{component} does not serve on " + ", ".join(f"{h} ({why})" for h, why in down.items())
                        + f": {len(instances) - len(down)} instance(s) left to take over")
    assert not problems, "; ".join(problems)


@check("CP-002", "kube-controller-manager serves on every control-plane host, with a live leader",
       property="control-plane",
       runbook="control-plane-restart",
       remediation="""Run kube-controller-manager on every control-plane host with --leader-elect=true;
restart the one whose Lease renewals stopped.""")
def test_controller_manager_leader(snapshot: Snapshot, inventory: Inventory, evidence: Evidence,
                                   elected_instances: dict[str, dict[str, str]]) -> None:
    """Without a live leader no controller reconciles: nothing is rescheduled."""
    _leader_check("kube-controller-manager", snapshot, inventory, evidence,
                  elected_instances["kube-controller-manager"])


@check("CP-003", "kube-scheduler serves on every control-plane host, with a live leader", property="control-plane",
       runbook="control-plane-restart",
       remediation="""Run kube-scheduler on every control-plane host with --leader-elect=true; restart the one
whose Lease renewals stopped.""")
def test_scheduler_leader(snapshot: Snapshot, inventory: Inventory, evidence: Evidence,
                          elected_instances: dict[str, dict[str, str]]) -> None:
    """Without a live leader new pods stay Pending."""
    _leader_check("kube-scheduler", snapshot, inventory, evidence, elected_instances["kube-scheduler"])
