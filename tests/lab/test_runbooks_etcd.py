"""The etcd runbooks on the lab: a member that lost its disk is replaced, and the whole
cluster is restored from a snapshot, each run unattended until the etcd checks pass."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from breaking import etcd_of, fresh_member, journal, lab_settled, run_checks, runbook
from hakit.lab.netns import Lab

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
        if not etcd_of(lab).health(endpoint)[0]:
            fresh_member(lab, host)
        for aside in lab.paths.etcd_data(host).glob(".hakit-replaced-*"):
            shutil.rmtree(aside)


def test_etcd_replace_member_brings_back_a_member_that_lost_its_disk(lab: Lab, tmp_path: Path, runs: Path) -> None:
    old = {m.name: m.id for m in etcd_of(lab).members()}["cp3"]
    with disk_lost(lab, "cp3"):
        assert run_checks(lab.paths.inventory, tmp_path, "ETCD-002")[1]["ETCD-002"]["outcome"] == "fail"
        done = runbook(lab, "run", "etcd-replace-member", "--yes", "host=cp3")
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"cp3: member id {old}, unhealthy" in done.stdout and f"removed member {old}" in done.stdout
        assert list(lab.paths.etcd_data("cp3").glob(".hakit-replaced-*")) == [], \
            "a data dir that was already gone is not 'moved aside'"
        members = {m.name: m.id for m in etcd_of(lab).members()}
        assert sorted(members) == ["cp1", "cp2", "cp3"] and members["cp3"] != old, members
    assert "etcd-replace-member: done, and ETCD-001, ETCD-002, ETCD-003, ETCD-007, API-002 pass" in done.stdout
    steps = [r["step"] for r in journal(runs) if r.get("status") == "done"]
    assert steps == ["look", "stop", "remove", "move-aside", "add", "rejoin", "caught-up", "apiserver"]


@contextmanager
def data_dir_mounted(lab: Lab, host: str) -> Iterator[Path]:
    """The member's data dir on a filesystem of its own (a tmpfs mounted on it, the data
    copied in), as production hosts have it: the data dir itself cannot be moved (EBUSY).
    Each lab process has a private copy of the machine's mounts taken when it started, so
    etcd and the host's sshd (what the runbook reaches) are restarted to see the mount."""
    data, keep = lab.paths.etcd_data(host), lab.paths.etcd_data(host).parent / "etcd.test-keep"
    h = lab.host(host)

    def restarted(*components: str) -> None:
        for c in components:
            h.stop(c)
            h.start(c)
    h.stop("etcd")
    shutil.copytree(data, keep, symlinks=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0700", "tmpfs", str(data)], check=True)
    try:
        shutil.copytree(keep, data, symlinks=True, dirs_exist_ok=True)
        shutil.rmtree(keep)
        restarted("sshd", "etcd")
        lab_settled(lab)
        yield data
    finally:
        h.stop("etcd")
        shutil.copytree(data, keep, symlinks=True)      # what the runbook left: the live member
        subprocess.run(["umount", str(data)], check=True)
        shutil.rmtree(data)
        shutil.copytree(keep / "member", data / "member", symlinks=True)
        shutil.rmtree(keep)
        restarted("sshd", "etcd")


def test_etcd_replace_member_works_where_the_data_dir_is_a_mount_point(lab: Lab, runs: Path) -> None:
    with data_dir_mounted(lab, "cp3") as data:
        done = runbook(lab, "run", "etcd-replace-member", "--yes", "host=cp3", "force=yes")
        assert done.returncode == 0, done.stdout + done.stderr
        assert os.path.ismount(data), "the data dir is still the mount point it was"
        [aside] = data.glob(".hakit-replaced-*")
        assert (aside / "member").is_dir() and (data / "member").is_dir() and oct(aside.stat().st_mode)[-3:] == "700"


def test_etcd_replace_member_refuses_a_healthy_member_and_changes_nothing(lab: Lab, runs: Path) -> None:
    before = [(m.id, m.name) for m in etcd_of(lab).members()]
    out = runbook(lab, "run", "etcd-replace-member", "--yes", "host=cp2")
    assert out.returncode == 1 and "cp2's member is healthy: there is nothing to replace" in out.stderr, out.stderr
    assert [(m.id, m.name) for m in etcd_of(lab).members()] == before


def test_etcd_replace_member_dry_run_changes_nothing(lab: Lab, runs: Path) -> None:
    before = [(m.id, m.name) for m in etcd_of(lab).members()]
    out = runbook(lab, "run", "etcd-replace-member", "--dry-run", "host=cp3")
    assert out.returncode == 0, out.stderr
    assert all(step in out.stdout for step in ("member remove", "member add cp3", "rejoin cp3 etcd")), out.stdout
    assert [(m.id, m.name) for m in etcd_of(lab).members()] == before and not runs.exists()


@contextmanager
def leftovers_removed(lab: Lab) -> Iterator[None]:
    """What a restore leaves beside each data dir (the copy, the old dir) goes after the
    test; and should the runbook stop midway, everything is started again."""
    try:
        yield
    finally:
        for h in lab.control_planes:
            for c in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
                lab.host(h.name).start(c)
            for left in lab.paths.etcd_data(h.name).glob(".hakit-*"):
                shutil.rmtree(left) if left.is_dir() else left.unlink()


def test_etcd_restore_snapshot_brings_back_what_the_snapshot_holds(lab: Lab, api, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                   runs: Path) -> None:
    """A ConfigMap made before the snapshot is deleted after it, another is made after it:
    the restore brings the first back and loses the second, and the cluster is whole."""
    from kubernetes import client
    core = client.CoreV1Api(api)
    before, after = "hakit-restore-before", "hakit-restore-after"
    for name in (before, after):   # left by an earlier, failed run
        if name in {c.metadata.name for c in core.list_namespaced_config_map("default").items}:
            core.delete_namespaced_config_map(name, "default")
    core.create_namespaced_config_map("default", {"metadata": {"name": before}, "data": {"k": "v"}})
    with leftovers_removed(lab):
        backup = runbook(lab, "run", "etcd-backup", "--yes", f"dir={tmp_path / 'snaps'}")
        assert backup.returncode == 0, backup.stdout + backup.stderr
        [snap] = (tmp_path / "snaps").glob("*.db")
        core.delete_namespaced_config_map(before, "default")
        core.create_namespaced_config_map("default", {"metadata": {"name": after}})
        refused = runbook(lab, "run", "etcd-restore-snapshot", "--yes", f"snapshot={snap}")
        assert refused.returncode == 1 and "etcd has quorum" in refused.stderr, refused.stdout + refused.stderr
        done = runbook(lab, "run", "etcd-restore-snapshot", "--yes", f"snapshot={snap}", "force=yes")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "mode 0600" in done.stdout and "snapshot copies removed" in done.stdout, done.stdout
        assert not [h.name for h in lab.control_planes if (lab.paths.etcd_data(h.name) / ".hakit-restore.db").exists()]
    names = {c.metadata.name for c in core.list_namespaced_config_map("default").items}
    assert before in names and after not in names, names
    assert "etcd-restore-snapshot: done, and ETCD-001, ETCD-002, ETCD-003, API-001, API-002, CP-002, CP-003 pass" \
        in done.stdout
    core.delete_namespaced_config_map(before, "default")


def test_etcd_restore_snapshot_refuses_before_any_stop_where_etcdutl_does_not_run(lab: Lab, tmp_path: Path,
                                                                                  runs: Path) -> None:
    """A kubeadm host has etcdutl only inside the etcd image: that is found before the outage
    begins, not after every apiserver and member is stopped."""
    doc = yaml.safe_load(lab.paths.inventory.read_text())
    doc.setdefault("control_plane", {}).setdefault("paths", {})["etcdutl"] = "/nonexistent/etcdutl"
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(doc))
    out = runbook(lab, "run", "etcd-restore-snapshot", "--yes", "force=yes", "max_age_hours=10000",
                  "--inventory", str(inventory))
    assert out.returncode == 1 and "does not run on cp1, cp2, cp3" in out.stderr, out.stdout + out.stderr
    assert all(lab.host(h.name).is_running(c) for h in lab.control_planes for c in ("etcd", "kube-apiserver"))


def test_etcd_restore_snapshot_dry_run_changes_nothing(lab: Lab, runs: Path) -> None:
    data = {h.name: lab.paths.etcd_data(h.name).stat().st_ino for h in lab.control_planes}
    out = runbook(lab, "run", "etcd-restore-snapshot", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "snapshot restore" in out.stdout and "--bump-revision 1000000000 --mark-compacted" in out.stdout
    assert {h.name: lab.paths.etcd_data(h.name).stat().st_ino for h in lab.control_planes} == data
    assert not runs.exists() and not list(lab.paths.etcd_data("cp1").glob(".hakit-*"))
