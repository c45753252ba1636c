"""Disruptive: the API endpoint survives losing its VIP holder or one apiserver.

Each check breaks one thing on purpose, measures with 100 ms probes, restores, and
keeps the timeline: VIP holders seen over SSH on every host, and a client loop
that asks the apiserver's /readyz through the VIP the whole time.
"""

from __future__ import annotations

import pytest

from hakit import hosts
from hakit.cluster import Cluster
from hakit.faults.kinds import LinkDown, StopComponent
from hakit.fixtures.disruption import Alerts, Inject
from hakit.inventory import Inventory
from hakit.measure import Timeline
from hakit.model import Evidence, check
from hakit.scenarios import api
from hakit.scenarios.api import Outage, VipMove

VIP_REMEDIATION = """Every control-plane host must run keepalived with the same virtual_router_id
and VIP, a distinct priority, and a track script that follows haproxy; check that VRRP
adverts (IP protocol 112) pass between the hosts, and run `hakit runbook run vip-recover`."""


def judged(evidence: Evidence, outages: list[Outage], api_seen: Timeline, fault_at: float,
           slo: float) -> list[str]:
    """Each outage a client saw through the VIP against the SLO (one still going when the
    watch ended is a miss whatever its length); returns the misses."""
    misses = []
    for o in outages:
        if not evidence.within(o.name, o.seconds, slo, "vip_failover_seconds", o.how) or not o.ended:
            misses.append(f"{o.name}: {o.seconds:.1f} s" if o.ended else
                          f"{o.name}: still failing after {o.seconds:.1f} s")
    failed, total = api_seen.failures(after=fault_at)
    evidence.record("API requests through the VIP that failed", f"{failed} of {total}")
    return misses


def vip_failover(inv: Inventory, control: Cluster, inject: Inject, evidence: Evidence,
                 fault_on: api.FaultOn, stuck: str) -> VipMove:
    """The VIP failover scenario, judged: exactly one holder after the restore, and every
    outage a client saw within the SLO."""
    slo = inv.slo.vip_failover_seconds
    evidence.deadline = (slo, "slo.vip_failover_seconds")
    try:
        move = api.failover(inv, control, inject, evidence, fault_on, stuck)
    except api.VipStuck as e:
        pytest.fail(str(e), pytrace=False)
    misses = judged(evidence, api.client_outages(move.api, move.fault, move.answered,
                                                 "client outage after the failover (the VIP moving back)"),
                    move.api, move.fault.injected_at, slo)
    assert len(move.final) == 1, (f"after restoring {move.old}, the VIP is held by {move.final or 'nobody'}: "
                                  "split brain or no holder")
    assert not misses, (f"clients through the VIP saw longer outages than the {slo:g} s SLO ({'; '.join(misses)}) "
                        f"when the VIP moved from {move.old} to {move.new}")
    return move


@check("VIP-D01", "Clients reach the API through the VIP within the SLO when keepalived stops on its holder",
       property="api-endpoint", disruptive="vip-failover", runbook="vip-recover", remediation=VIP_REMEDIATION)
def test_vip_fails_over_when_keepalived_stops(inventory: Inventory, control: Cluster, inject: Inject,
                                              evidence: Evidence) -> None:
    """A stopped keepalived sends a priority-0 advert: a backup should take over at once."""
    vip_failover(inventory, control, inject, evidence, lambda h: StopComponent(control, h, "keepalived"),
                 "the backups never became master: are VRRP adverts between the hosts blocked?")


@check("VIP-D02", "Clients reach the API through the VIP within the SLO when haproxy stops on its holder "
       "(the track script works)",
       property="api-endpoint", disruptive="vip-failover", runbook="vip-recover", remediation="""A keepalived
       whose track script does not follow haproxy keeps the VIP on a host that cannot serve it. Give the
       vrrp_instance a track_script that checks haproxy (kubeadm's HA guide: check_apiserver.sh) with a
       negative weight larger than the priority gap to the next host.""")
def test_vip_fails_over_when_haproxy_stops(inventory: Inventory, control: Cluster, inject: Inject,
                                           evidence: Evidence) -> None:
    """keepalived itself is fine here; only its track script can tell that the VIP leads nowhere."""
    vip_failover(inventory, control, inject, evidence, lambda h: StopComponent(control, h, "haproxy"),
                 "the holder's keepalived track script did not fail when haproxy stopped")


@check("VIP-D03", "The VIP moves within the VRRP bound, and clients within the SLO, when its holder's link goes "
       "down",
       property="api-endpoint", disruptive="vip-failover", runbook="vip-recover", remediation=VIP_REMEDIATION)
def test_vip_fails_over_when_the_holders_link_goes_down(inventory: Inventory, control: Cluster,
                                                        inject: Inject, evidence: Evidence) -> None:
    """A dead host says nothing: the backups must notice the missing adverts themselves."""
    seconds = inventory.slo.vip_failover_seconds + 10
    move = vip_failover(inventory, control, inject, evidence, lambda h: LinkDown(control, h, seconds),
                        "no backup noticed the missing adverts: is keepalived running on the other hosts?")
    new, moved, pm = move.new, move.seconds, move.pm
    vrrp = hosts.parse_keepalived(control.read(new, inventory.host_path("keepalived_conf", new)))
    mine = next((v for v in vrrp if inventory.vip in v.vips), None)
    if mine is None or mine.priority is None:
        pytest.fail(f"{new}'s keepalived.conf has no vrrp_instance with the VIP and a priority: the VRRP bound "
                    "cannot be computed", pytrace=False)
    # RFC 3768: a backup declares the master down after 3 adverts plus a skew that favours higher priorities.
    bound = 3 * mine.advert_int + (256 - mine.priority) / 256 * mine.advert_int
    ok = moved <= bound + pm
    evidence.record("VRRP master-down bound", f"{bound:.2f} s (advert_int {mine.advert_int:g}, priority "
                    f"{mine.priority} on {new})", f"the VIP moved within it, ± {pm:.2f} s", ok)
    assert ok, (f"the VIP moved {moved:.2f} s ± {pm:.2f} after the link went down, beyond the VRRP master-down "
                f"bound of {bound:.2f} s: {new}'s keepalived is slower than its own config says (load, or a "
                "different advert_int on the master)")


@check("API-D01", "Requests through the VIP keep succeeding while one apiserver is stopped",
       property="api-endpoint", disruptive="control-plane-failover", runbook="control-plane-restart",
       remediation="""haproxy must health-check each apiserver (option httpchk GET /readyz, `check`
       on every server line) so a stopped apiserver leaves the pool within seconds; clients then
       see no errors.""")
def test_api_survives_one_apiserver_stopping(inventory: Inventory, control: Cluster, inject: Inject,
                                            evidence: Evidence, alerts: Alerts) -> None:
    """An apiserver upgrade or crash must not be an outage: the load balancer routes around it."""
    slo = inventory.slo.vip_failover_seconds
    stop = api.stop_apiserver(inventory, control, inject, evidence, alerts, hold=max(5.0, slo))
    misses = judged(evidence, api.client_outages(stop.api, stop.fault, stop.fault.restored_at,
                                                 "client outage after the restore (the apiserver back in the pool)"),
                    stop.api, stop.fault.injected_at, slo)
    assert not misses, (f"clients through the VIP saw longer outages than the {slo:g} s SLO ({'; '.join(misses)}) "
                        f"after stopping the apiserver on {stop.victim}: haproxy did not take it out of the pool in "
                        "time")
