"""Runbooks on the lab: break the lab in the runbook's way, run it unattended, and
see its checks pass; a dry run changes nothing; a SIGKILLed run resumes without
repeating finished steps; a failing step stops the run and says where."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from breaking import backups_aged, file_changed, hung, journal, result, run_checks, runbook, stopped
from hakit import wait
from hakit.lab.netns import Lab

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("settled")]


def test_etcd_backup_repairs_a_stale_backup(lab: Lab, tmp_path: Path, runs: Path) -> None:
    with backups_aged(lab, 30):
        assert run_checks(lab.paths.inventory, tmp_path, "ETCD-008")[1]["ETCD-008"]["outcome"] == "fail"
        done = runbook(lab, "run", "etcd-backup", "--yes", "keep=2")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "etcd-backup: done, and ETCD-008 pass" in done.stdout
        assert len(list(lab.paths.backups.glob("*.db"))) <= 2
    assert [r["status"] for r in journal(runs) if r["event"] == "end"] == ["succeeded"]


def test_a_dry_run_and_show_change_nothing(lab: Lab, runs: Path) -> None:
    before = sorted(lab.paths.backups.iterdir())
    for args in (("run", "etcd-backup", "--dry-run"), ("show", "etcd-backup", "--markdown")):
        out = runbook(lab, *args)
        assert out.returncode == 0, out.stderr
        assert "snapshot save" in out.stdout and "etcdutl snapshot status" in out.stdout
    assert sorted(lab.paths.backups.iterdir()) == before and not runs.exists()


def test_a_changing_step_is_never_run_unconfirmed_without_a_terminal(lab: Lab, runs: Path) -> None:
    out = runbook(lab, "run", "etcd-backup")
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "pass --yes to run unattended" in out.stderr and not runs.exists()


def test_control_plane_restart_revives_a_hung_apiserver(lab: Lab, tmp_path: Path, runs: Path) -> None:
    with hung(lab, "cp2", "kube-apiserver"):
        failed = wait.until(lambda: (r := result(lab.paths.inventory, tmp_path, "API-002"))
                            ["outcome"] == "fail" and r, 60, "API-002 to see the hung apiserver")
        assert "cp2" in failed["message"], failed["message"]
        done = runbook(lab, "run", "control-plane-restart", "--yes", "host=cp2", "component=kube-apiserver")
        assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS  API-002" in done.stdout


def test_a_killed_run_resumes_without_repeating_finished_steps(lab: Lab, runs: Path) -> None:
    env = {**os.environ, "HAKIT_INVENTORY": str(lab.paths.inventory)}
    proc = subprocess.Popen([sys.executable, "-m", "hakit.cli", "runbook", "run", "control-plane-restart", "--yes",
                             "host=cp3", "component=kube-scheduler"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    def restarted() -> bool:
        return any(r.get("step") == "restart" and r.get("status") == "done" for r in journal(runs)) \
            if any(runs.glob("*.jsonl")) else False
    try:
        wait.until(restarted, 120, "the restart step to be journaled done", interval=0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert not any(r["event"] == "end" for r in journal(runs)), "killed before the end"
    pid = lab.host("cp3").pid("kube-scheduler")
    run_id = next(runs.glob("*.jsonl")).stem
    out = runbook(lab, "resume", run_id, "--yes")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "[2/3] Restart it (stop, escalating to SIGKILL, then start): already done" in out.stdout
    assert lab.host("cp3").pid("kube-scheduler") == pid, "resume restarted the scheduler a second time"
    starts = [r for r in journal(runs) if r.get("step") == "restart" and r.get("status") == "started"]
    assert len(starts) == 1 and journal(runs)[-1] == {**journal(runs)[-1], "event": "end", "status": "succeeded"}


def test_a_failing_step_stops_the_run_and_says_where(lab: Lab, runs: Path) -> None:
    before = sorted(lab.paths.backups.iterdir())
    out = runbook(lab, "run", "etcd-backup", "--yes", "dir=/proc/hakit-cannot-write-here")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "step 2 (save) failed" in out.stderr and "Done before it: pick-member." in out.stderr, out.stderr
    assert "Its undo, not run: delete the partial snapshot file" in out.stderr
    steps = [(r.get("step"), r.get("status")) for r in journal(runs) if r["event"] in ("step", "end")]
    assert steps[-2:] == [("save", "failed"), (None, "failed")], steps
    assert ("verify", "started") not in steps and sorted(lab.paths.backups.iterdir()) == before


def test_vip_recover_brings_back_a_vip_nobody_holds(lab: Lab, tmp_path: Path, runs: Path) -> None:
    with stopped(lab, *[f"{h.name}/keepalived" for h in lab.control_planes]):
        failed = result(lab.paths.inventory, tmp_path, "API-004")
        assert failed["outcome"] == "fail", failed
        done = runbook(lab, "run", "vip-recover", "--yes")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "nobody holds the VIP" in done.stdout and "PASS  API-004" in done.stdout


def test_node_drain_replace_moves_the_pods_and_returns_the_node(lab: Lab, api, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                runs: Path) -> None:
    """A lost worker: drain it, "repair" it (its kubelet back) while the runbook waits, uncordon."""
    from kubernetes import client
    env = {**os.environ, "HAKIT_INVENTORY": str(lab.paths.inventory)}
    with stopped(lab, "w2/kwok"):
        wait.until(lambda: result(lab.paths.inventory, tmp_path, "WL-001")["outcome"] == "warn",
                   60, "WL-001 (a warning) to see w2 NotReady")
        proc = subprocess.Popen([sys.executable, "-m", "hakit.cli", "runbook", "run", "node-drain-replace", "--yes",
                                 "node=w2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait.until(lambda: any(runs.glob("*.jsonl")) and any(
            r.get("step") == "drain" and r.get("status") == "done" for r in journal(runs)), 180, "the drain")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    steps = [r.get("step") for r in journal(runs) if r.get("status") == "done"]
    assert steps == ["look", "cordon", "drain", "back", "uncordon"]
    assert not client.CoreV1Api(api).read_node("w2").spec.unschedulable and "PASS  WL-001" in out


@contextmanager
def load_balancer_gone(lab: Lab) -> Iterator[None]:
    """Hosts as a fresh install finds them: no keepalived or haproxy running, no configs.
    Afterwards the lab's own configs are written back and both restarted, whatever happened."""
    from hakit.lab.provision import write_load_balancer
    lb_files = ("etc/keepalived/keepalived.conf", "etc/keepalived/check_apiserver.sh", "etc/haproxy/haproxy.cfg")
    with stopped(lab, *[f"{h.name}/{s}" for h in lab.control_planes for s in ("haproxy", "keepalived")]):
        for h in lab.control_planes:
            for f in lb_files:
                (lab.paths.host(h.name) / f).unlink()
        try:
            yield
        finally:
            for h in lab.control_planes:
                write_load_balancer(lab.spec, lab.paths, h)
                for f in lb_files:
                    (lab.paths.host(h.name) / f"{f}.hakit-prev").unlink(missing_ok=True)
                for s in ("haproxy", "keepalived"):
                    lab.host(h.name).stop(s)


def test_provision_api_lb_sets_up_the_vip_on_fresh_hosts(lab: Lab, tmp_path: Path, runs: Path) -> None:
    with load_balancer_gone(lab):
        failed = run_checks(lab.paths.inventory, tmp_path, "API-001")[1]["API-001"]
        assert failed["outcome"] == "fail", failed
        done = runbook(lab, "run", "provision-api-lb", "--yes")
        assert done.returncode == 0, done.stdout + done.stderr
        conf = (lab.paths.etc("cp2", "keepalived", "keepalived.conf")).read_text()
        assert "priority 105" in conf and f"{lab.spec.vip}/24 dev eth0" in conf, conf
    assert "a new VRRP password" in done.stdout and "auth_pass" not in done.stdout
    for line in ("PASS  API-001", "PASS  API-003", "PASS  API-004", "PASS  API-005", "PASS  HOST-003"):
        assert line in done.stdout, done.stdout
    secret = conf.split("auth_pass")[1].split()[0]
    assert secret not in "".join(p.read_text() for p in runs.glob("*.jsonl")), "the VRRP password was journaled"


def test_provision_api_lb_dry_run_changes_nothing(lab: Lab, runs: Path) -> None:
    conf = lab.paths.etc("cp1", "haproxy", "haproxy.cfg")
    before = conf.stat().st_mtime_ns
    out = runbook(lab, "run", "provision-api-lb", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "haproxy -c -q -f" in out.stdout and "keepalived --config-test" in out.stdout, out.stdout
    assert conf.stat().st_mtime_ns == before and not runs.exists()


def test_an_audit_runs_the_named_runbook_for_a_failing_check_and_reports_the_run(lab: Lab, tmp_path: Path,
                                                                                 runs: Path) -> None:
    env = {**os.environ, "HAKIT_INVENTORY": str(lab.paths.inventory)}
    with backups_aged(lab, 30):
        audit = subprocess.run([sys.executable, "-m", "hakit.cli", "audit", "--reports", str(tmp_path / "reports"),
                                "--check", "ETCD-008", "--check", "API-001", "--remediate", "etcd-backup"],
                               capture_output=True, text=True, timeout=600, env=env)
    assert audit.returncode == 1, "the check failed, even though the runbook then repaired it"
    assert "remediation: etcd-backup for ETCD-008: succeeded" in audit.stdout, audit.stdout + audit.stderr
    report = tmp_path / "reports" / "latest"
    [run] = json.loads((report / "results.json").read_text())["remediation"]
    assert run["status"] == "succeeded" and run["checks"] == {"ETCD-008": {"outcome": "pass", "message": ""}}
    assert [s["status"] for s in run["steps"]] == ["done"] * 4 and run["for_checks"] == ["ETCD-008"]
    html = (report / "audit.html").read_text()
    assert "Runbooks run from this audit (1)" in html and "Runbook etcd-backup ran from this audit: succeeded" in html


def test_an_audit_refuses_an_unknown_runbook_before_checking_anything(lab: Lab, tmp_path: Path) -> None:
    env = {**os.environ, "HAKIT_INVENTORY": str(lab.paths.inventory)}
    audit = subprocess.run([sys.executable, "-m", "hakit.cli", "audit", "--reports", str(tmp_path / "reports"),
                            "--remediate", "etcd-bakup"], capture_output=True, text=True, timeout=60, env=env)
    assert audit.returncode == 2 and audit.stderr.count("\n") == 1, audit.stderr
    assert "no runbook etcd-bakup" in audit.stderr and not (tmp_path / "reports").exists()


def test_vip_recover_names_a_config_split_brain_and_provision_api_lb_repairs_it(lab: Lab, tmp_path: Path,
                                                                              runs: Path) -> None:
    """cp2's keepalived in a VRRP group of its own (another router id) elects itself: restarting
    cannot help, so vip-recover fails saying why and what repairs it; provision-api-lb does."""
    conf = lab.paths.etc("cp2", "keepalived", "keepalived.conf")

    def restart() -> None:
        lab.host("cp2").stop("keepalived")
        lab.host("cp2").start("keepalived")
    try:
        with file_changed(conf, lambda t: re.sub(r"virtual_router_id \d+", "virtual_router_id 77", t), restart):
            wait.until(lambda: "split brain" in result(lab.paths.inventory, tmp_path, "API-004")
                       ["message"], 30, "API-004 to see the split brain")
            out = runbook(lab, "run", "vip-recover", "--yes")
            assert out.returncode == 1, out.stdout + out.stderr
            assert "the keepalived configs disagree (virtual_router_id differs: cp1=51, cp2=77, cp3=51)" in out.stderr
            assert "hakit runbook run provision-api-lb" in out.stderr
            done = runbook(lab, "run", "provision-api-lb", "--yes")
            assert done.returncode == 0, done.stdout + done.stderr
            assert "PASS  API-004" in done.stdout and "kept the VRRP password from cp1" in done.stdout
    finally:
        for h in lab.control_planes:
            for left in lab.paths.host(h.name).glob("etc/*/*.hakit-prev"):
                left.unlink()


def test_a_step_whose_precondition_fails_does_nothing_and_says_why(lab: Lab, runs: Path) -> None:
    """Restarting cp2's etcd while cp3's is down would lose quorum: the restart step refuses."""
    with stopped(lab, "cp3/etcd"):
        pid = lab.host("cp2").pid("etcd")
        out = runbook(lab, "run", "control-plane-restart", "--yes", "host=cp2", "component=etcd")
        assert out.returncode == 1, out.stdout + out.stderr
        assert ("step 2 (restart) failed: not safe to run now: only 1 other voting etcd member(s) are healthy"
                in out.stderr)
        assert "It did nothing." in out.stderr and lab.host("cp2").pid("etcd") == pid
    steps = [(r.get("step"), r.get("status")) for r in journal(runs) if r["event"] == "step"]
    assert steps == [("look", "started"), ("look", "done"), ("restart", "failed")], steps


def cluster_state(lab: Lab, api) -> dict:  # type: ignore[no-untyped-def]
    """What a runbook that changed something would have changed: each control-plane process
    (a restart gives it a new pid), who holds the VIP, which nodes are cordoned."""
    from kubernetes import client
    pids = {(h.name, c): lab.host(h.name).pid(c) for h in lab.control_planes
            for c in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "haproxy", "keepalived")}
    cordoned = {n.metadata.name: bool(n.spec.unschedulable) for n in client.CoreV1Api(api).list_node().items}
    return {"pids": pids, "vip": lab.vip_holders(), "cordoned": cordoned}


@pytest.mark.parametrize("name,params", [("control-plane-restart", ["host=cp2", "component=kube-apiserver"]),
                                         ("vip-recover", []), ("node-drain-replace", ["node=w1"])])
def test_a_dry_run_changes_nothing(lab: Lab, api, runs: Path, name: str, params: list[str]) -> None:  # type: ignore[no-untyped-def]
    before = cluster_state(lab, api)
    out = runbook(lab, "run", name, "--dry-run", *params)
    assert out.returncode == 0 and "dry run: nothing was changed" in out.stdout, out.stdout + out.stderr
    assert cluster_state(lab, api) == before and not runs.exists()
