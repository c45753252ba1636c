"""Disruptive: the API endpoint survives losing its VIP holder or one apiserver.

Each check breaks one thing on purpose, measures with 100 ms probes, restores, and
keeps the timeline: VIP holders seen over SSH on every host, and a client loop
that asks the apiserver's /readyz through the VIP the whole time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack

import pytest

from hakit import hosts, wait
from hakit.cluster import Cluster
from hakit.cluster.probes import readyz
from hakit.cluster.stream import AddressStream
from hakit.faults.base import Fault
from hakit.faults.kinds import LinkDown, StopComponent
from hakit.fixtures.disruption import Alerts, Inject
from hakit.http import session
from hakit.inventory import Host, Inventory
from hakit.measure import Timeline, Watch, time_zero
from hakit.model import Evidence, check

VIP_REMEDIATION = """Every control-plane host must run keepalived with the same virtual_router_id
and VIP, a distinct priority, and a track script that follows haproxy; check that VRRP
adverts (IP protocol 112) pass between the hosts, and run `hakit runbook run vip-recover`."""


PROBE_TIMEOUT = 1.0   # seconds a client request through the VIP may take


def api_answers(inv: Inventory) -> Callable[[], bool]:
    """Each probe on a new connection, as a new client: a kept-alive one stays on the apiserver
    haproxy first sent it to, and would never meet the one a fault stopped."""
    return lambda: readyz(inv.vip_url, timeout=PROBE_TIMEOUT, session=session()) == "ok"


def vip_timeline(control: Cluster, inv: Inventory, host: Host) -> Timeline:
    """Whether host holds the VIP: the host's own address events over one SSH channel, or,
    where hosts are reached through Ansible, a 100 ms sample of its addresses."""
    if inv.ssh is not None:
        return AddressStream(inv, host.name, host.address, inv.vip, lambda: control.clock_offset(host.name))
    return Watch(f"VIP on {host.name}", lambda: control.holds(host.name, inv.vip))


def sole_holder(control: Cluster, inv: Inventory) -> str:
    holders = [h.name for h in inv.control_plane if control.holds(h.name, inv.vip)]
    assert len(holders) == 1, f"before the fault the VIP must have exactly one holder; it has {holders or 'none'}"
    return holders[0]


def client_outages(evidence: Evidence, api: Timeline, fault: Fault, answered: float, slo: float,
                   later: str = "client outage after the failover (the VIP moving back)") -> list[str]:
    """The headline: what a client through the VIP saw, the fault's outage (requests begun
    from one timeout before the fault, as those in flight failed too, until `answered`: the
    API answering through the new holder, or the restore) and any `later` one (the VIP moving
    back when the old holder returns, the restored apiserver rejoining the pool), each from its
    first failed request to the first good one after its last (± the probe's interval at each
    end), judged against the SLO; returns the misses."""
    misses, after = [], fault.injected_at - PROBE_TIMEOUT   # a request in flight when the fault hit failed too
    for name, before in (("client outage during the fault", answered), (later, float("inf"))):
        seen = api.first_outage(after=after, before=before)
        failing = api.first_failure(after=after)
        if seen is None and failing and failing[0] <= before:   # it began and never ended while watched
            took = api.samples[-1][0] - failing[0]
            evidence.within(name, took, slo, "vip_failover_seconds", "requests through the VIP still failing "
                            "when the watch ended")
            misses.append(f"{name}: still failing after {took:.1f} s")
            break
        after = seen[1] if seen else answered
        took = seen[1] - seen[0] if seen else 0.0
        pm = (max(api.gap_before(seen[0]), api.gap_before(seen[1])) + max(api.latency(seen[0]), api.latency(seen[1]))
              if seen else api.resolution)   # the probe's spacing, and how long a request itself took there
        how = (f"first failed request to the first good one through the VIP, ± {pm:.2f} s (probe spacing plus a good "
               "request's typical time at either end)" if seen else
               f"no request through the VIP failed (probed every {api.resolution:g} s)")
        if not evidence.within(name, took, slo, "vip_failover_seconds", how):
            misses.append(f"{name}: {took:.1f} s")
    failed, total = api.failures(after=fault.injected_at)
    evidence.record("API requests through the VIP that failed", f"{failed} of {total}")
    return misses


def vip_failover(inv: Inventory, control: Cluster, inject: Inject, evidence: Evidence,
                 fault_on: Callable[[str], Fault], stuck: str) -> tuple[str, float, float]:
    """Fault the VIP holder; measure until another host holds the VIP and the API answers
    through it; restore; see exactly one holder again. Judged: the outage a client saw.
    Returns (new holder, seconds from the fault's effect to the VIP's move, ± seconds).
    `stuck` says what it means when the VIP does not move."""
    slo = inv.slo.vip_failover_seconds
    evidence.deadline = (slo, "slo.vip_failover_seconds")
    old = sole_holder(control, inv)
    with ExitStack() as stack:
        holds = {h.name: stack.enter_context(vip_timeline(control, inv, h)) for h in inv.control_plane}
        api = stack.enter_context(Watch("API through the VIP", api_answers(inv), overlap=True))
        with inject(fault_on(old)) as fault:
            sent = fault.injected_at
            try:
                moved = wait.until(lambda: min(((t, n) for n, w in holds.items() if n != old
                                                if (t := w.first(lambda v: v is True, sent))), default=None),
                                   max(slo * 3, 30), f"another host to take the VIP from {old}", interval=0.02)
            except wait.WaitTimeout:
                now = ", ".join(n for n, w in holds.items() if w.latest is True) or "nobody"
                pytest.fail(f"no other host took the VIP within {max(slo * 3, 30):g} s of '{fault.describe()}' "
                            f"(held by {now}): {stuck}", pytrace=False)
            new = moved[1]
            api.wait(lambda v: v is True, moved[0], max(slo * 3, 30), "the API to answer through the VIP")
        wait.until(lambda: sum(w.latest is True for w in holds.values()) == 1, max(slo * 3, 30),
                   "exactly one VIP holder after the restore", interval=0.1,
                   why=lambda: "held by " + (", ".join(n for n, w in holds.items() if w.latest is True) or "nobody")
                   + "; unread: " + (", ".join(n for n, w in holds.items() if w.latest is None) or "none"))
        time.sleep(8)   # a preempting holder takes the VIP back once its track script has risen
        final = [n for n, w in holds.items() if w.latest is True]
        evidence.event(f"after restore: VIP on {', '.join(final)}", time.monotonic(), len(final) == 1)
    lost, failed = holds[old].first(lambda v: v is False, sent), api.first_failure(after=sent)
    t0, pm, how = time_zero(sent, fault.returned_at, fault.took_effect(), [
        (lost, holds[old].resolution, f"{old} dropped the VIP"),
        (failed[1] if failed else None, failed[1] - failed[0] if failed else 0, "a request through the VIP failed")])
    evidence.took_effect(t0, pm, how)
    if lost:
        evidence.event(f"{old} dropped the VIP", lost, False)
    if failed:
        # its sending, which may precede time zero: it was in flight when the fault hit
        evidence.event("first failed API request: sent", failed[0], False)
    evidence.event(f"VIP held by {new}", moved[0], True)
    back = api.first(lambda v: v is True, moved[0]) or moved[0]   # awaited above
    evidence.event("API answers through the VIP", back, True)
    pm_move = pm + holds[new].resolution
    evidence.record("VIP move", f"{moved[0] - t0:.2f} s ± {pm_move:.2f} ({old} → {new})", "a milestone: the "
                    "outage clients saw is what the SLO judges", seconds=moved[0] - t0)
    misses = client_outages(evidence, api, fault, back, slo)
    assert len(final) == 1, f"after restoring {old}, the VIP is held by {final or 'nobody'}: split brain or no holder"
    assert not misses, (f"clients through the VIP saw longer outages than the {slo:g} s SLO ({'; '.join(misses)}) "
                        f"when the VIP moved from {old} to {new}")
    return new, moved[0] - t0, pm_move


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
    new, moved, pm = vip_failover(inventory, control, inject, evidence, lambda h: LinkDown(control, h, seconds),
                                  "no backup noticed the missing adverts: is keepalived running on the other hosts?")
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
    victim = sole_holder(control, inventory)   # the VIP holder's haproxy sees its local apiserver go
    url = f"https://{control.addresses[victim]}:{inventory.apiserver_port}"
    with Watch("API through the VIP", api_answers(inventory), overlap=True) as api, \
            Watch(f"{victim}'s apiserver", lambda: readyz(url, timeout=PROBE_TIMEOUT) == "ok") as own, \
            alerts.following("TargetDown", victim) as follow:
        with inject(StopComponent(control, victim, "kube-apiserver")) as fault:
            sent = fault.injected_at
            stopped = own.wait(lambda v: v is False, sent, 30, f"{victim}'s apiserver to stop answering /readyz")
            time.sleep(max(5.0, slo))   # long enough for every health check to notice
            alerts.hold(follow, fault, sent)
        alerts.done(follow, fault, evidence)
    t0, pm, how = time_zero(sent, fault.returned_at, fault.took_effect(), [
        (stopped, own.gap_before(stopped), f"{victim}'s apiserver stopped answering /readyz")])
    evidence.took_effect(t0, pm, how)
    evidence.event(f"{victim}'s apiserver stopped answering /readyz", stopped, False)
    if first := api.first_failure(after=sent - PROBE_TIMEOUT):
        evidence.event("first failed API request: sent", first[0], False)
    misses = client_outages(evidence, api, fault, fault.restored_at, slo,
                            "client outage after the restore (the apiserver back in the pool)")
    assert not misses, (f"clients through the VIP saw longer outages than the {slo:g} s SLO ({'; '.join(misses)}) "
                        f"after stopping the apiserver on {victim}: haproxy did not take it out of the pool in time")
