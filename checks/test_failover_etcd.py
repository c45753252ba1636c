"""Disruptive: etcd keeps quorum, and writes, when one member stops.

A writer puts a probe key (under /hakit-probe/, removed afterwards) through the
surviving members every 100 ms; status and health of every member are sampled at
the same rate; after the restore the member must rejoin and catch up.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hakit.cluster import Cluster
from hakit.etcd import EtcdClient
from hakit.fixtures.disruption import Alerts, Inject
from hakit.inventory import Inventory
from hakit.model import Evidence, check
from hakit.scenarios.etcd import PROBE_PREFIX, lose_member

REMEDIATION = """Run three (or five) etcd members on separate hosts with the kubeadm defaults
(heartbeat 100 ms, election timeout 1000 ms); a member that cannot rejoin is replaced with
`hakit runbook run etcd-replace-member`. Keep members' disks fast: slow fsyncs stretch elections."""


@pytest.fixture
def writes(etcd: EtcdClient) -> Iterator[None]:
    """Probe keys live under one prefix and are always removed."""
    yield
    etcd.delete_prefix(PROBE_PREFIX)


def stop_member(inv: Inventory, etcd: EtcdClient, control: Cluster, inject: Inject, evidence: Evidence,
                leader: bool, alerts: Alerts | None = None) -> None:
    """One member lost (hakit.scenarios.etcd), judged: no failed write for a follower's loss;
    for the leader's, a new leader and writes back within the election SLO."""
    slo = inv.slo.etcd_leader_election_seconds
    evidence.deadline = (slo, "slo.etcd_leader_election_seconds") if leader else None
    loss = lose_member(inv, etcd, control, inject, evidence, leader, alerts)
    failed, total, lost = loss.failed, loss.total, loss.lost
    evidence.record("writes that failed", f"{failed} of {total}",
                    "none beyond the election" if leader else "none: a follower's loss costs no write", None)
    if not leader:
        assert failed == 0, (f"{failed} of {total} writes failed while only a follower was down: "
                             "the survivors did not keep quorum")
        return
    assert loss.elected is not None   # lose_member waited for it
    election = loss.elected - loss.t0
    assert evidence.within("leader election", election, slo, "etcd_leader_election_seconds",
                           f"± {loss.election_pm:.2f} s: time zero's, and the survivors' leader sampled every "
                           f"{loss.leader_resolution:g} s"), \
        f"a new etcd leader took {election:.1f} s; the SLO is {slo:g} s"
    window = (lost[1] - lost[0]) if lost else 0.0
    assert evidence.within("write outage", window, slo, "etcd_leader_election_seconds",
                           f"first failed write to the first good one after the last, ± {loss.write_pm:.2f} s: the "
                           "writers' spacing plus a good write's time" if lost else
                           f"no write failed (a write every {loss.write_resolution:g} s)"), \
        f"writes failed for {window:.1f} s after the leader stopped ({failed} of {total})"


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
