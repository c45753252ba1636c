"""The API endpoint's scenarios: the VIP holder loses keepalived, haproxy or its link
(VIP-D01..03), or one apiserver stops (API-D01), while a client asks /readyz through the
VIP every 100 ms on a new connection, and each host's VIP is watched as it changes."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass

from hakit import wait
from hakit.cluster import Cluster
from hakit.cluster.probes import readyz
from hakit.cluster.stream import AddressStream
from hakit.faults.base import Fault
from hakit.faults.kinds import StopComponent
from hakit.http import session
from hakit.inventory import Host, Inventory
from hakit.measure import Timeline, Watch, time_zero
from hakit.model import Evidence
from hakit.scenarios import Alerts, Inject

PROBE_TIMEOUT = 1.0   # seconds a client request through the VIP may take
FaultOn = Callable[[str], Fault]   # the fault to inject on the VIP holder, given its name


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
    if len(holders) != 1:
        raise AssertionError(f"before the fault the VIP must have exactly one holder; it has {holders or 'none'}")
    return holders[0]


class VipStuck(AssertionError):
    """No other host took the VIP: the failover itself did not happen."""


@dataclass
class VipMove:
    """What a VIP failover did: from `old` to `new`, when (time zero ± its uncertainty), what
    the client through the VIP saw, and who held the VIP once the fault was undone."""
    old: str
    new: str
    fault: Fault
    api: Timeline          # the client's /readyz through the VIP, the whole time
    answered: float        # the client's first good answer after the move
    seconds: float         # from the fault's effect to the VIP held by `new`
    pm: float              # ± of `seconds`
    final: list[str]       # the VIP's holders after the restore (exactly one, or split brain / none)


def failover(inv: Inventory, control: Cluster, inject: Inject, evidence: Evidence,
             fault_on: FaultOn, stuck: str) -> VipMove:
    """Fault the VIP holder; watch until another host holds the VIP and the API answers
    through it; restore; see who holds it once a preempting holder has had time to take it
    back. `stuck` says what it means when the VIP does not move (raised as VipStuck)."""
    slo = inv.slo.vip_failover_seconds
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
                raise VipStuck(f"no other host took the VIP within {max(slo * 3, 30):g} s of '{fault.describe()}' "
                               f"(held by {now}): {stuck}") from None
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
    return VipMove(old, new, fault, api, back, moved[0] - t0, pm_move, final)


@dataclass
class ApiserverStop:
    """One apiserver stopped (the VIP holder's, whose haproxy sees its local backend go)."""
    victim: str
    fault: Fault
    api: Timeline   # the client's /readyz through the VIP, the whole time


def stop_apiserver(inv: Inventory, control: Cluster, inject: Inject, evidence: Evidence, alerts: Alerts,
                   hold: float) -> ApiserverStop:
    """Stop the VIP holder's apiserver and keep it stopped `hold` seconds after it stops
    answering (long enough for every health check to notice), following TargetDown."""
    victim = sole_holder(control, inv)
    url = f"https://{control.addresses[victim]}:{inv.apiserver_port}"
    with Watch("API through the VIP", api_answers(inv), overlap=True) as api, \
            Watch(f"{victim}'s apiserver", lambda: readyz(url, timeout=PROBE_TIMEOUT) == "ok") as own, \
            alerts.following("TargetDown", victim) as follow:
        with inject(StopComponent(control, victim, "kube-apiserver")) as fault:
            sent = fault.injected_at
            stopped = own.wait(lambda v: v is False, sent, 30, f"{victim}'s apiserver to stop answering /readyz")
            time.sleep(hold)
            alerts.hold(follow, fault, sent)
        alerts.done(follow, fault, evidence)
    t0, pm, how = time_zero(sent, fault.returned_at, fault.took_effect(), [
        (stopped, own.gap_before(stopped), f"{victim}'s apiserver stopped answering /readyz")])
    evidence.took_effect(t0, pm, how)
    evidence.event(f"{victim}'s apiserver stopped answering /readyz", stopped, False)
    if first := api.first_failure(after=sent - PROBE_TIMEOUT):
        evidence.event("first failed API request: sent", first[0], False)
    return ApiserverStop(victim, fault, api)


@dataclass(frozen=True)
class Outage:
    """A window in which requests through the VIP failed, as a client saw it."""
    name: str
    seconds: float
    how: str      # how it was measured, with its ±
    ended: bool   # False: requests were still failing when the watch ended


def client_outages(api: Timeline, fault: Fault, answered: float, later: str) -> list[Outage]:
    """What a client through the VIP saw: the fault's outage (requests begun from one timeout
    before the fault, as those in flight failed too, until `answered`: the API answering
    through the new holder, or the restore) and the `later` one (the VIP moving back when the
    old holder returns, the restored apiserver rejoining the pool), each from its first failed
    request to the first good one after its last, ± the probe's spacing and a good request's
    time at either end."""
    out, after = [], fault.injected_at - PROBE_TIMEOUT
    for name, before in (("client outage during the fault", answered), (later, float("inf"))):
        seen = api.first_outage(after=after, before=before)
        failing = api.first_failure(after=after)
        if seen is None and failing and failing[0] <= before:   # it began and never ended while watched
            out.append(Outage(name, api.samples[-1][0] - failing[0],
                              "requests through the VIP still failing when the watch ended", ended=False))
            break
        after = seen[1] if seen else answered
        if seen:
            pm = (max(api.gap_before(seen[0]), api.gap_before(seen[1]))
                  + max(api.latency(seen[0]), api.latency(seen[1])))
            out.append(Outage(name, seen[1] - seen[0], f"first failed request to the first good one through the "
                              f"VIP, ± {pm:.2f} s (probe spacing plus a good request's typical time at either end)",
                              ended=True))
        else:
            out.append(Outage(name, 0.0, f"no request through the VIP failed (probed every {api.resolution:g} s)",
                              ended=True))
    return out
