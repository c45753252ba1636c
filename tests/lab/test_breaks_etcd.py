"""etcd checks fail on a lab broken in exactly their way, and pass once restored."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from breaking import assert_breaks, backups_aged, etcd_of, file_changed, member_removed, stopped
from hakit import wait
from hakit.errors import UnreachableError
from hakit.lab.netns import Lab

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("settled")]


def test_etcd002_names_the_stopped_member(lab: Lab, tmp_path: Path) -> None:
    addr = lab.spec.host("cp3").address
    assert_breaks(lab, tmp_path, "ETCD-002", lambda: stopped(lab, "cp3/etcd"), addr)


def test_etcd006_sees_a_database_over_its_quota_share(lab: Lab, tmp_path: Path) -> None:
    """The db cannot be filled to 2 GiB here; the share it may use is lowered instead."""
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(lab.paths.inventory.read_text())

    def tight(text: str) -> str:
        doc = yaml.safe_load(text)
        doc["thresholds"] = {"etcd_db_quota_share": 0.0001}
        return yaml.safe_dump(doc)

    assert_breaks(lab, tmp_path, "ETCD-006", lambda: file_changed(inventory, tight), "of its quota",
                  inventory=inventory)


def test_etcd007_sees_fault_tolerance_spent(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "ETCD-007", lambda: stopped(lab, "cp2/etcd"), "one more failure loses quorum")


def test_etcd008_sees_a_stale_backup(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "ETCD-008", lambda: backups_aged(lab, 30), "h old; the SLO is 24 h")


@contextmanager
def partitioned(lab: Lab, host: str) -> Iterator[None]:
    h = lab.host(host)
    h.partition()
    try:
        yield
    finally:
        h.heal()


def test_etcd003_sees_a_member_cut_off_from_its_leader(lab: Lab, tmp_path: Path) -> None:
    """cp3 partitioned from its peers (hakit still reaches it): it loses its leader."""
    assert_breaks(lab, tmp_path, "ETCD-003", lambda: partitioned(lab, "cp3"), "disagree", within=30)


def test_etcd004_sees_a_member_whose_revision_stays_behind(lab: Lab, tmp_path: Path) -> None:
    """The apiservers keep writing (leases) through the majority; cp3 cannot apply them."""
    assert_breaks(lab, tmp_path, "ETCD-004", lambda: partitioned(lab, "cp3"), "revisions still differ", within=30)


def test_etcd001_sees_a_two_member_cluster(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "ETCD-001", lambda: member_removed(lab, "cp3"), "etcd has 2 voting members")


@contextmanager
def plaintext_client_port(lab: Lab, host: str) -> Iterator[None]:
    """The member restarted to also serve and advertise clients over plain HTTP."""
    addr = lab.spec.host(host).address
    h = lab.host(host)
    h.stop("etcd")
    h.start("etcd", extra_args=(
        f"--listen-client-urls=https://127.0.0.1:2379,https://{addr}:2379,http://{addr}:23790",
        f"--advertise-client-urls=https://{addr}:2379,http://{addr}:23790"))
    try:
        yield
    finally:
        h.stop("etcd")
        h.start("etcd")


def test_etcd009_names_the_plaintext_client_url(lab: Lab, tmp_path: Path) -> None:
    addr = lab.spec.host("cp3").address
    assert_breaks(lab, tmp_path, "ETCD-009", lambda: plaintext_client_port(lab, "cp3"), f"http://{addr}:23790",
                  within=60)


@contextmanager
def nospace_alarm(lab: Lab, host: str) -> Iterator[None]:
    """One member restarted with a quota its database already exceeds: the next write
    raises NOSPACE cluster-wide (etcd turns read-only), as a full disk of history would.
    Restore: the normal quota back, then `etcdctl alarm disarm`."""
    h = lab.host(host)
    h.stop("etcd")
    h.start("etcd", extra_args=("--quota-backend-bytes=4096",))
    try:
        wait.until(lambda: any(a == "NOSPACE" for _, a in etcd_of(lab).alarms()), 60, "the NOSPACE alarm")
        yield
    finally:
        h.stop("etcd")
        h.start("etcd")
        etcd, endpoint = etcd_of(lab), f"https://{lab.spec.host(host).address}:2379"

        def answers() -> bool:  # /health stays false while an alarm is raised: ask for status
            try:
                return bool(etcd.status(endpoint))
            except UnreachableError:
                return False

        wait.until(answers, 60, f"{host}'s etcd to answer with its normal quota")
        for member, alarm in etcd.alarms():
            etcd.disarm(member, alarm)


def test_etcd005_names_the_nospace_alarm(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "ETCD-005", lambda: nospace_alarm(lab, "cp3"), "NOSPACE on member", within=30)
