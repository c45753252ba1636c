"""etcd's scenario: one member stopped (a follower, as in maintenance) or killed (the
leader, as in a crash: a stopping leader hands its leadership over first, which measures
nothing), while writers put a probe key through the surviving members every 100 ms and
every member's status and health are sampled at the same rate; after the restore the
member must rejoin and catch up (ETCD-D01, ETCD-D02)."""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass
from itertools import cycle

from hakit import wait
from hakit.cluster import Cluster
from hakit.errors import UnreachableError
from hakit.etcd import EtcdClient
from hakit.faults.base import Fault
from hakit.faults.kinds import KillComponent, StopComponent
from hakit.inventory import Inventory
from hakit.measure import Watch, time_zero
from hakit.model import Evidence
from hakit.scenarios import Alerts, Inject

PROBE_PREFIX = "/hakit-probe/"   # the writers' key lives under it; the check's fixture removes it


def host_of(inv: Inventory, endpoint: str) -> str:
    return next(h.name for h in inv.control_plane if f"//{h.address}:" in endpoint)


@dataclass
class MemberLoss:
    """What losing one member did to the survivors' writes and leadership."""
    host: str
    fault: Fault
    t0: float                          # when the fault took effect
    pm: float                          # ± of t0
    elected: float | None              # when the survivors agreed on a new leader (the leader's loss only)
    election_pm: float                 # ± of the election's time: t0's and the leader watch's spacing
    leader_resolution: float           # how often the survivors' leader was sampled
    failed: int                        # writes that failed, of
    total: int
    lost: tuple[float, float] | None   # the first failed write's sending to the first good one after the last
    recovered: bool                    # False: writes were still failing when the watch ended
    write_pm: float                    # ± of the write outage's length (or the writers' spacing when none)
    write_resolution: float


def lose_member(inv: Inventory, etcd: EtcdClient, control: Cluster, inject: Inject, evidence: Evidence,
                leader: bool, alerts: Alerts | None = None) -> MemberLoss:
    """Stop a follower or kill the leader and watch; with `alerts`, also follow
    etcdMembersDown in the same fault for MON-D01."""
    now = etcd.statuses()   # now, not at the start of the run: an earlier check may have moved the leader
    answering = {ep: s for ep, s in now.items() if not isinstance(s, str)}
    if not answering:
        raise AssertionError(f"no etcd member answers: {now}")
    leader_id = next(iter(answering.values())).leader
    victim = next(ep for ep, s in answering.items() if (s.member_id == leader_id) == leader)
    survivors = [ep for ep in answering if ep != victim]
    slo = inv.slo.etcd_leader_election_seconds
    targets = cycle(survivors)
    elected = None
    with ExitStack() as stack:
        # Overlapping writers, as clients keep arriving: a write that hangs until its timeout
        # while the leader is gone does not hide the ones sent after the election.
        written = stack.enter_context(Watch(
            "writes through the surviving members",
            lambda: etcd.put(next(targets), f"{PROBE_PREFIX}write", str(time.time())), overlap=True))
        leaders = stack.enter_context(Watch("the survivors' leader",
                                            lambda: {etcd.status(ep).leader for ep in survivors}))
        health = stack.enter_context(Watch(f"health of {host_of(inv, victim)}", lambda: etcd.health(victim)[0]))
        fault = (KillComponent if leader else StopComponent)(control, host_of(inv, victim), "etcd")
        follow = stack.enter_context(alerts.following("etcdMembersDown", fault.host)) if alerts else None
        with inject(fault):
            t0 = fault.injected_at
            down = health.wait(lambda v: v is False, t0, 30, f"health to report {victim} down")
            evidence.event("health reports the member down", down, True)
            if leader:
                elected = leaders.wait(lambda v: len(v) == 1 and "0" not in v and leader_id not in v, t0,
                                       max(slo * 3, 30), "a new leader among the survivors")
                evidence.event("new leader elected", elected, True)
            time.sleep(2)   # writes keep going with one member down: sample them for a while
            # from one write timeout before time zero: a write in flight when the member died failed too
            failed, total = written.failures(after=t0 - etcd.timeout)
            lost = written.first_outage(after=t0 - etcd.timeout)
            failing, recovered = written.first_failure(after=t0 - etcd.timeout), lost is not None
            if failing and not lost:   # writes began failing and none has succeeded since
                lost = (failing[0], time.monotonic())
            if lost:
                evidence.event("first failed write: sent", lost[0], False)
                evidence.event("writes succeed again" if recovered else "writes still failing", lost[1], recovered)
            if alerts:
                alerts.hold(follow, fault, t0)
        rejoined = health.wait(lambda v: v is True, time.monotonic(), 60, f"{victim} to be healthy again")
        evidence.event("member healthy again", rejoined, True)
        caught_up = wait.until(lambda: _caught_up(etcd, victim, survivors), 60, f"{victim} to catch up")
        evidence.event(f"revision caught up ({caught_up})", time.monotonic(), True)
        if alerts:
            alerts.done(follow, fault, evidence)
    t0, pm, how = time_zero(fault.injected_at, fault.returned_at, fault.took_effect(),
                            [(down, health.gap_before(down), f"{host_of(inv, victim)}'s member stopped answering")])
    evidence.took_effect(t0, pm, how)
    write_pm = (max(written.gap_before(lost[0]), written.gap_before(lost[1])) + written.latency(lost[1])
                if lost else written.resolution)
    return MemberLoss(host_of(inv, victim), fault, t0, pm, elected,
                      pm + leaders.gap_before(elected) if elected is not None else 0.0, leaders.resolution,
                      failed, total, lost,
                      recovered, write_pm, written.resolution)


def _caught_up(etcd: EtcdClient, victim: str, survivors: list[str]) -> str | None:
    try:
        mine, theirs = etcd.status(victim).revision, max(etcd.status(ep).revision for ep in survivors)
    except UnreachableError:
        return None
    return f"revision {mine}" if mine >= theirs else None
