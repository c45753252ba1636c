"""etcd: an odd number (≥ 3) of healthy members that agree on one leader, one
cluster and one term, with room to lose a member and a recent backup."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from hakit.errors import HakitError
from hakit.etcd import EtcdClient, MemberStatus, Quorum, snapshot_status, snapshots
from hakit.inventory import Inventory
from hakit.model import Evidence, check
from hakit.snapshot import Snapshot

DEFAULT_QUOTA = 2 * 1024**3  # etcd's default --quota-backend-bytes


def _answered(statuses: dict[str, MemberStatus | str]) -> list[MemberStatus]:
    return [s for s in statuses.values() if isinstance(s, MemberStatus)]


def _member_down(inventory: Inventory, endpoint: str, evidence: Evidence) -> None:
    """The finding is about the etcd member on the endpoint's host."""
    address = urlsplit(endpoint).hostname
    evidence.about(next((h.name for h in inventory.control_plane if h.address == address), address or endpoint),
                   "etcd")


@check("ETCD-001", "etcd has an odd number of members, at least 3", property="etcd",
       runbook="etcd-replace-member",
       remediation="""Run 3 (or 5) members. With an even count, quorum needs as many members as with one
more, for no extra fault tolerance. Add or remove members with `etcdctl member add/remove`.""")
def test_member_count(etcd: EtcdClient, evidence: Evidence) -> None:
    """2 voters tolerate no failure; 4 tolerate one, like 3. Learners do not vote: they are
    shown, not counted."""
    members = etcd.members()
    voters = [m.name for m in members if not m.is_learner]
    n = evidence.record("voting members", len(voters), expected="odd, ≥ 3")
    learners = [m.name or f"{m.id} (added, never started: a half-done `member add`)"
                for m in members if m.is_learner]
    if learners:
        evidence.record("learners (not voting)", learners)
    assert n >= 3 and n % 2 == 1, f"etcd has {n} voting members ({', '.join(voters)}): need an odd count ≥ 3"


@check("ETCD-002", "Every etcd endpoint is healthy", property="etcd", runbook="etcd-replace-member",
       remediation="""On the failing host: `systemctl status etcd` or the etcd static pod's log;
`etcdctl endpoint health --cluster` shows which member cannot serve.""")
def test_every_endpoint_healthy(etcd: EtcdClient, inventory: Inventory, evidence: Evidence) -> None:
    """A member down is fault tolerance spent."""
    bad = {}
    for ep in etcd.endpoints:
        ok, why = etcd.health(ep)
        evidence.record(ep, "healthy" if ok else why, expected="healthy")
        if not ok:
            bad[ep] = why
            _member_down(inventory, ep, evidence)
    assert not bad, "unhealthy etcd endpoints: " + "; ".join(f"{ep} ({why})" for ep, why in bad.items())


@check("ETCD-003", "etcd members agree: one leader, one cluster id, one raft term", property="etcd",
       runbook="etcd-replace-member",
       remediation="""Several cluster ids mean a member was started with --initial-cluster-state=new against
an existing cluster: remove and re-add it. No leader: quorum is lost; restore members first.""")
def test_one_leader_one_cluster(etcd_statuses: dict[str, MemberStatus | str], inventory: Inventory,
                                evidence: Evidence) -> None:
    """Disagreement here means quorum is lost or the cluster has split."""
    ok = _answered(etcd_statuses)
    silent = [f"{ep} ({why})" for ep, why in etcd_statuses.items() if isinstance(why, str)]
    for ep, why in etcd_statuses.items():
        if isinstance(why, str):
            _member_down(inventory, ep, evidence)
    leaders = {s.leader for s in ok}
    clusters = evidence.record("cluster ids", sorted({s.cluster_id for s in ok}), expected="one")
    evidence.record("leaders", sorted(leaders), expected="one")
    terms = evidence.record("raft terms", sorted({s.raft_term for s in ok}), expected="one")
    assert not silent, f"members that gave no status: {', '.join(silent)}"
    assert len(clusters) == 1, f"members report {len(clusters)} cluster ids: {clusters}"
    assert len(leaders) == 1 and "0" not in leaders, f"members disagree on the leader (or have none): {sorted(leaders)}"
    assert sum(s.is_leader for s in ok) == 1, "no endpoint answering is the leader it names"
    assert len(terms) == 1, f"members are in different raft terms: {terms}"


@check("ETCD-004", "etcd revisions converge", property="etcd", severity="warning",
       runbook="etcd-replace-member",
       remediation="""A member whose revision stays behind is not applying the log: check its disk latency
(etcd_disk_wal_fsync_duration_seconds) and network to the leader; replace it if it never catches up.""")
def test_revisions_converge(etcd: EtcdClient, inventory: Inventory, evidence: Evidence) -> None:
    """Revisions differ for a moment under writes; a gap that persists is a lagging member."""
    for _ in range(5):
        now = etcd.statuses()
        revs = {ep: s.revision for ep, s in now.items() if isinstance(s, MemberStatus)}
        if len(set(revs.values())) == 1 and len(revs) == len(now):
            break
        time.sleep(0.5)
    evidence.record("revisions", revs, expected="equal within 2.5 s")
    silent = [ep for ep, s in now.items() if isinstance(s, str)]
    for ep in silent:
        _member_down(inventory, ep, evidence)
    assert not silent, f"members that gave no revision: {', '.join(silent)}"
    assert len(set(revs.values())) == 1, f"revisions still differ after 2.5 s: {revs}"


@check("ETCD-005", "etcd raises no alarm", property="etcd", runbook="etcd-replace-member",
       remediation="""NOSPACE: compact and defragment (`etcdctl compact`, `etcdctl defrag`), raise
--quota-backend-bytes, then `etcdctl alarm disarm`. CORRUPT: replace the corrupt member from a healthy one.""")
def test_no_alarms(etcd: EtcdClient, evidence: Evidence) -> None:
    """NOSPACE turns the cluster read-only; CORRUPT means a member's data diverged."""
    alarms = evidence.record("alarms", etcd.alarms(), expected="none")
    assert not alarms, "etcd alarms: " + ", ".join(f"{a} on member {m}" for m, a in alarms)


@check("ETCD-006", "etcd database size is under its quota share", property="etcd", severity="warning",
       runbook="etcd-backup",
       remediation="""Compact and defragment one member at a time (`etcdctl defrag --endpoints=...`), find what
grows (events, large CRs), or raise --quota-backend-bytes.""")
def test_db_size_under_quota(etcd_statuses: dict[str, MemberStatus | str], snapshot: Snapshot,
                             inventory: Inventory, evidence: Evidence) -> None:
    """At the quota etcd raises NOSPACE and refuses every write."""
    quota = _quota(snapshot)
    share = inventory.thresholds.etcd_db_quota_share
    over = []
    for s in _answered(etcd_statuses):
        used = s.db_size / quota
        evidence.record(f"{s.endpoint} db", f"{s.db_size / 2**20:.1f} MiB ({used:.1%} of {quota / 2**30:.1f} GiB)",
                        expected=f"< {share:.0%}", ok=used < share)
        if used >= share:
            over.append(f"{s.endpoint} at {used:.0%}")
    assert not over, f"etcd db above {share:.0%} of its quota: {', '.join(over)}"


def _quota(snapshot: Snapshot) -> int:
    for pod in snapshot.control_plane_pods("etcd"):
        for arg in pod.spec.containers[0].command or []:
            if arg.startswith("--quota-backend-bytes="):
                return int(arg.split("=", 1)[1])
    return DEFAULT_QUOTA


@check("ETCD-007", "etcd can lose a member and keep quorum", property="etcd", runbook="etcd-replace-member",
       remediation="""Fault tolerance is (members − 1) / 2 of the healthy ones. Bring failed members back or
replace them (runbook etcd-replace-member) until at least one failure can be absorbed.""")
def test_fault_tolerance(etcd: EtcdClient, inventory: Inventory, evidence: Evidence) -> None:
    """The property HA rests on: one more failure must not cost quorum."""
    members = [(m, any(etcd.health(u)[0] for u in m.client_urls)) for m in etcd.members()]
    q = Quorum.of(members)
    for m, ok in members:
        if not ok and not m.is_learner and m.client_urls:
            _member_down(inventory, m.client_urls[0], evidence)
    tolerance = evidence.record("failures tolerated now", q.tolerance, expected="≥ 1")
    evidence.record("voters / healthy / quorum", f"{q.voters} / {q.healthy} / {q.needed}")
    assert tolerance >= 1, (f"{q.healthy} of {q.voters} voting members healthy, quorum is {q.needed}: "
                            f"{'one more failure loses quorum' if tolerance == 0 else 'quorum is lost'}")


@check("ETCD-008", "The newest etcd backup is younger than the SLO", property="etcd", runbook="etcd-backup",
       remediation="""Schedule `etcdctl snapshot save` (runbook etcd-backup) at least as often as the SLO,
to the configured backup location, and verify each snapshot.""")
def test_backup_is_recent(inventory: Inventory, evidence: Evidence) -> None:
    """Without a recent snapshot, losing quorum loses the cluster's state; a file that
    is not a readable snapshot (empty, truncated) is no backup at all."""
    if not inventory.etcd.backup_dir:
        pytest.skip("etcd.backup_dir not set in the inventory")
    max_age = inventory.slo.backup_max_age_hours
    snaps = snapshots(Path(inventory.etcd.backup_dir))
    assert snaps, f"no snapshot (etcd-<UTC time>.db) in {inventory.etcd.backup_dir}"
    newest = snaps[0]
    age = (time.time() - newest.stat().st_mtime) / 3600
    evidence.record("newest snapshot", f"{newest.name}, {age:.1f} h old", expected=f"< {max_age:g} h")
    assert age < max_age, f"newest snapshot {newest.name} is {age:.1f} h old; the SLO is {max_age:g} h"
    try:
        status = snapshot_status(newest)
    except HakitError as e:
        pytest.fail(f"newest snapshot {newest.name} is not usable: {e}", pytrace=False)
    evidence.record("etcdutl snapshot status", f"revision {status['revision']}, {status['totalKey']} keys, "
                    f"{status['totalSize']} bytes, hash {status['hash']}", expected="readable, keys > 0")


@check("ETCD-009", "etcd serves clients and peers over TLS", property="etcd",
       remediation="""Set --cert-file/--key-file/--client-cert-auth for clients and --peer-cert-file/
--peer-key-file/--peer-client-cert-auth for peers, with https:// URLs (kubeadm does this by default).""")
def test_tls_everywhere(etcd: EtcdClient, evidence: Evidence) -> None:
    """etcd holds every Secret of the cluster: https alone is not enough, a client must
    also prove who it is (--client-cert-auth)."""
    members = etcd.members()
    plain = [u for m in members for u in (*m.peer_urls, *m.client_urls) if not u.startswith("https://")]
    evidence.record("plaintext URLs", plain or "none", expected="none")
    assert not plain, f"etcd members advertise plaintext URLs: {', '.join(plain)}"
    open_ = {u: got for m in members for u in m.client_urls if (got := etcd.answers_without_certificate(u))}
    evidence.record("clients without a certificate", open_ or "refused by every member", expected="refused")
    assert not open_, ("etcd serves clients that show no certificate (--client-cert-auth is off): "
                       + ", ".join(f"{u} ({got})" for u, got in open_.items()))
