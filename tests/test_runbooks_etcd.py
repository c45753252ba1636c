"""The etcd runbooks on the lab: a member that lost its disk is replaced, and the whole
cluster is restored from a snapshot, each run unattended until the etcd checks pass."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from breaking import run_checks
from hakit.lab import Lab
from test_breaks_etcd import _etcd, fresh_member
from test_runbooks import journal, runbook

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("settled")]


@contextmanager
def disk_lost(lab: Lab, host: str) -> Iterator[None]:
    """The member's data dir gone (a dead disk) and etcd down. The safety net, should the
    runbook not repair it: the replacement procedure by hand."""
    lab.host(host).stop("etcd")
    shutil.rmtree(lab.paths.etcd_data(host))
    try:
        yield
    finally:
        endpoint = f"https://{lab.spec.host(host).address}:2379"
        if not _etcd(lab).health(endpoint)[0]:
            fresh_member(lab, host)
        for aside in lab.paths.etcd_data(host).parent.glob("etcd.hakit-replaced-*"):
            shutil.rmtree(aside)


def test_etcd_replace_member_brings_back_a_member_that_lost_its_disk(lab: Lab, tmp_path: Path, runs: Path) -> None:
    old = {m.name: m.id for m in _etcd(lab).members()}["cp3"]
    with disk_lost(lab, "cp3"):
        assert run_checks(lab.paths.inventory, tmp_path, "ETCD-002")[1]["ETCD-002"]["outcome"] == "fail"
        done = runbook(lab, "run", "etcd-replace-member", "--yes", "host=cp3")
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"cp3: member id {old}, unhealthy" in done.stdout and f"removed member {old}" in done.stdout
        assert list(lab.paths.etcd_data("cp3").parent.glob("etcd.hakit-replaced-*")) == [], \
            "a data dir that was already gone is not 'moved aside'"
        members = {m.name: m.id for m in _etcd(lab).members()}
        assert sorted(members) == ["cp1", "cp2", "cp3"] and members["cp3"] != old, members
    assert "etcd-replace-member: done, and ETCD-001, ETCD-002, ETCD-003, ETCD-007 pass" in done.stdout
    steps = [r["step"] for r in journal(runs) if r.get("status") == "done"]
    assert steps == ["look", "stop", "remove", "move-aside", "add", "rejoin", "caught-up"]


def test_etcd_replace_member_refuses_a_healthy_member_and_changes_nothing(lab: Lab, runs: Path) -> None:
    before = [(m.id, m.name) for m in _etcd(lab).members()]
    out = runbook(lab, "run", "etcd-replace-member", "--yes", "host=cp2")
    assert out.returncode == 1 and "cp2's member is healthy: there is nothing to replace" in out.stderr, out.stderr
    assert [(m.id, m.name) for m in _etcd(lab).members()] == before


def test_etcd_replace_member_dry_run_changes_nothing(lab: Lab, runs: Path) -> None:
    before = [(m.id, m.name) for m in _etcd(lab).members()]
    out = runbook(lab, "run", "etcd-replace-member", "--dry-run", "host=cp3")
    assert out.returncode == 0, out.stderr
    assert "member remove" in out.stdout and "member add cp3" in out.stdout and "rejoin cp3 etcd" in out.stdout, out.stdout
    assert [(m.id, m.name) for m in _etcd(lab).members()] == before and not runs.exists()
