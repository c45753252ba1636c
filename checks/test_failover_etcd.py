"""Disruptive: etcd keeps quorum, and writes, when one member stops.

A writer puts a probe key (under /hakit-probe/, removed afterwards) through the
surviving members every 100 ms; status and health of every member are sampled at
the same rate; after the restore the member must rejoin and catch up.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from itertools import cycle

import pytest

from hakit import wait
from hakit.cluster import Cluster
from hakit.errors import UnreachableError
from hakit.etcd import EtcdClient
from hakit.faults.kinds import KillComponent, StopComponent
from hakit.fixtures.disruption import Alerts, Inject
from hakit.inventory import Inventory
from hakit.measure import Watch, time_zero
from hakit.model import Evidence, check

PROBE_PREFIX = "/hakit-probe/"
REMEDIATION = """Run three (or five) etcd members on separate hosts with the kubeadm defaults
(heartbeat 100 ms, election timeout 1000 ms); a member that cannot rejoin is replaced with
`hakit runbook run etcd-replace-member`. Keep members' disks fast: slow fsyncs stretch elections."""


@pytest.fixture
def writes(etcd: EtcdClient) -> Iterator[None]:
    """Probe keys live under one prefix and are always removed."""
    yield
    etcd.delete_prefix(PROBE_PREFIX)


def host_of(inv: Inventory, endpoint: str) -> str:
    return next(h.name for h in inv.control_plane if f"//{h.address}:" in endpoint)


def stop_member(inv: Inventory, etcd: EtcdClient, control: Cluster, inject: Inject, evidence: Evidence,
                leader: bool, alerts: Alerts | None = None) -> None:
    """Stop (a follower) or kill (the leader) one member and measure; with `alerts`, also follow
    etcdMembersDown in the same fault for MON-D01."""
    now = etcd.statuses()   # now, not at the start of the run: an earlier check may have moved the leader
    answering = {ep: s for ep, s in now.items() if not isinstance(s, str)}
    assert answering, f"no etcd member answers: {now}"
    leader_id = next(iter(answering.values())).leader
    victim = next(ep for ep, s in answering.items() if (s.member_id == leader_id) == leader)
    survivors = [ep for ep in answering if ep != victim]
    slo = inv.slo.etcd_leader_election_seconds
    evidence.deadline = (slo, "slo.etcd_leader_election_seconds") if leader else None
    targets = cycle(survivors)
    with ExitStack() as stack:
        # Overlapping writers, as clients keep arriving: a write that hangs until its timeout
        # while the leader is gone does not hide the ones sent after the election.
        written = stack.enter_context(Watch(
            "writes through the surviving members",
            lambda: etcd.put(next(targets), f"{PROBE_PREFIX}write", str(time.time())), overlap=True))
        leaders = stack.enter_context(Watch("the survivors' leader",
                                            lambda: {etcd.status(ep).leader for ep in survivors}))
        health = stack.enter_context(Watch(f"health of {host_of(inv, victim)}", lambda: etcd.health(victim)[0]))
        # A follower is stopped as in maintenance; the leader is killed as in a crash (a stopping
        # leader hands its leadership over first, which measures nothing).
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
    evidence.record("writes that failed", f"{failed} of {total}",
                    "none beyond the election" if leader else "none: a follower's loss costs no write", None)
    t0, pm, how = time_zero(fault.injected_at, fault.returned_at, fault.took_effect(),
                            [(down, health.gap_before(down), f"{host_of(inv, victim)}'s member stopped answering")])
    evidence.took_effect(t0, pm, how)
    if leader:
        election = elected - t0
        detail = (f"± {pm + leaders.gap_before(elected):.2f} s: time zero's, and the survivors' leader sampled "
                  f"every {leaders.resolution:g} s")
        assert evidence.within("leader election", election, slo, "etcd_leader_election_seconds", detail), \
            f"a new etcd leader took {election:.1f} s; the SLO is {slo:g} s"
        window = (lost[1] - lost[0]) if lost else 0.0
        write_pm = (max(written.gap_before(lost[0]), written.gap_before(lost[1])) + written.latency(lost[1])
                    if lost else written.resolution)
        assert evidence.within("write outage", window, slo, "etcd_leader_election_seconds",
                               f"first failed write to the first good one after the last, ± {write_pm:.2f} s: the "
                               "writers' spacing plus a good write's time" if lost else
                               f"no write failed (a write every {written.resolution:g} s)"), \
            f"writes failed for {window:.1f} s after the leader stopped ({failed} of {total})"
    else:
        assert failed == 0, (f"{failed} of {total} writes failed while only a follower was down: "
                             "the survivors did not keep quorum")


def _caught_up(etcd: EtcdClient, victim: str, survivors: list[str]) -> str | None:
    try:
        mine, theirs = etcd.status(victim).revision, max(etcd.status(ep).revision for ep in survivors)
    except UnreachableError:
        return None
    return f"revision {mine}" if mine >= theirs else None


@check("ETCD-D01", "Writes continue and health reports the member down while an etcd follower is stopped",
       property="etcd", disruptive="etcd-quorum", runbook="etcd-replace-member", remediation=REMEDIATION)
def test_writes_continue_without_a_follower(inventory: Inventory, etcd: EtcdClient, control: Cluster,
                                            inject: Inject, evidence: Evidence, writes: None, alerts: Alerts) -> None:
    """Losing a follower is the everyday failure of a 3-member etcd: it must cost nothing."""
    stop_member(inventory, etcd, control, inject, evidence, leader=False, alerts=alerts)


@check("ETCD-D02", "A new etcd leader is elected within the SLO when the leader dies, and writes resume",
       property="etcd", disruptive="etcd-quorum", runbook="etcd-replace-member", remediation=REMEDIATION)
def test_a_new_leader_is_elected(inventory: Inventory, etcd: EtcdClient, control: Cluster,
                                 inject: Inject, evidence: Evidence, writes: None) -> None:
    """Losing the leader in a crash costs one election: writes pause for about the election timeout."""
    stop_member(inventory, etcd, control, inject, evidence, leader=True)
