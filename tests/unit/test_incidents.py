"""The incident model on results as the checks report them: causes found, consequences
folded under them, the repair command filled from the evidence."""

from __future__ import annotations

import os
from pathlib import Path

from hakit.incidents import STILL_GOING, incidents
from hakit.model import Check, Outcome, Result, Severity

INV = Path("/etc/hakit/prod.yaml")


def failed(check_id: str, *about: tuple[str, str], outcome: Outcome = Outcome.FAIL,
           runbook: str | None = None) -> Result:
    return Result(Check(check_id, "t", "etcd", Severity.CRITICAL, "fix it", runbook), outcome, f"{check_id} failed",
                  0.0, [], check_id, about=list(about))


def test_an_etcd_member_down_is_one_incident_with_its_consequences_folded() -> None:
    results = [failed("API-002", ("cp3", "kube-apiserver")), failed("API-003", ("cp3", "kube-apiserver")),
               failed("ETCD-002", ("cp3", "etcd")), failed("ETCD-007", ("cp3", "etcd")),
               failed("HOST-004", ("cp3", "etcd"), ("cp3", "kube-apiserver")),
               failed("MON-002", ("cp3", "etcd"), ("cp3", "kube-apiserver"), ("cp3", "kube-controller-manager")),
               failed("ETCD-004", ("172.31.250.13", "etcd"), outcome=Outcome.ERROR)]
    [one] = incidents(results, [], INV, names={"172.31.250.13": "cp3"})
    assert one.cause == "etcd on cp3"
    assert one.repair == "hakit runbook run control-plane-restart host=cp3 component=etcd"
    assert [r.check.id for r in one.findings][:3] == ["ETCD-002", "ETCD-007", "HOST-004"]
    assert {c.split()[0] for c in one.consequences} == {"API-002", "API-003"}


def test_keepalived_down_everywhere_is_one_incident_explaining_every_check_that_lost_the_api() -> None:
    results = [failed("API-001", ("", "vip")), failed("API-004", ("", "vip")),
               failed("HOST-003", ("cp1", "keepalived"), ("cp2", "keepalived"), ("cp3", "keepalived")),
               failed("WL-001", ("", "api"), outcome=Outcome.ERROR),
               failed("CP-002", ("", "api"), outcome=Outcome.ERROR)]
    [one] = incidents(results, [], INV)
    assert one.cause == "keepalived on cp1, cp2, cp3" and one.repair == "hakit runbook run vip-recover"
    assert {r.check.id for r in one.findings} == {"API-001", "API-004", "HOST-003", "WL-001", "CP-002"}


def test_two_unrelated_causes_are_two_incidents_and_a_leftover_fault_comes_first() -> None:
    results = [failed("ETCD-002", ("cp3", "etcd")), failed("MON-004", ("", "alertmanager")),
               failed("MON-007", ("", "alertmanager"), outcome=Outcome.ERROR)]
    found = incidents(results, ["stop kube-scheduler on cp2 (by pid 7 on bastion)"], INV)
    assert [i.cause.split(":")[0] for i in found] == [
        "a fault injected by an interrupted hakit run is still in effect", "alertmanager", "etcd on cp3"]
    assert found[0].repair == f"hakit repair --inventory {INV}"
    assert "systemctl start alertmanager" in found[1].repair


def test_a_live_runs_fault_is_said_as_such_and_offers_no_repair() -> None:
    """A read-only audit while a disruptive run is under way: its fault is no crash's leftover."""
    live = f"stop kubelet on w1 (by pid 7 on bastion, {STILL_GOING}, 2026-12-04 21:41:12 UTC)"
    found = incidents([], [live, "stop etcd on cp3 (by pid 9 on bastion)"], INV)
    assert [i.cause.split(":")[0] for i in found] == [
        "a fault injected by an interrupted hakit run is still in effect",
        "another hakit run has a fault in effect while these checks read the cluster"]
    assert "stop kubelet on w1" in found[1].cause and "stop kubelet" not in found[0].cause
    assert "hakit repair" not in found[1].repair


def test_a_lost_worker_is_one_node_incident_and_the_placement_it_costs_is_folded_under_it() -> None:
    # CI saw this: with w1 lost, its CoreDNS replica went unready, so losing w2 would now take
    # CoreDNS down (WL-004) and w2 cannot be drained (WL-005). w2 is not broken: one incident.
    results = [failed("WL-001", ("w1", "node")),
               failed("WL-004", ("", "workload placement"), runbook="workload-spread"),
               failed("WL-005", ("", "workload placement"), runbook="workload-spread")]
    [one] = incidents(results, [], INV)
    assert one.cause == "node on w1"
    assert one.repair == "hakit runbook run control-plane-restart host=w1 component=kubelet"
    assert {c.split()[0] for c in one.consequences} == {"WL-004", "WL-005"}
    [alone] = incidents(results[1:], [], INV)   # with every node up, placement is its own cause
    assert alone.cause == "workload placement" and alone.repair == "hakit runbook show workload-spread"


def test_findings_nothing_explains_are_listed_as_they_are() -> None:
    results = [failed("ETCD-008", runbook="etcd-backup"), failed("WL-001", ("w1", "node"))]
    found = incidents(results, [], INV)
    assert found[0].repair == "hakit runbook run control-plane-restart host=w1 component=kubelet"
    assert not found[1].explained and found[1].repair == "ETCD-008: hakit runbook show etcd-backup"


def test_a_container_that_exits_at_once_is_not_offered_a_restart() -> None:
    """Seen on the kubeadm lab: a bad flag in cp3's scheduler manifest was offered
    control-plane-restart, which parks and restores the manifest and fails 'not running after the
    start'. The finding says the container exits at once: the repair is its manifest."""
    results = [Result(Check("CP-003", "t", "control-plane", Severity.CRITICAL, "fix it", "control-plane-restart"),
                      Outcome.FAIL, "kube-scheduler does not serve on cp3: its container: exited (exit code 1); "
                      "it exits at once, so a restart will not help: fix /etc/kubernetes/manifests/kube-scheduler.yaml",
                      0.0, [], "CP-003", about=[("cp3", "kube-scheduler")])]
    [one] = incidents(results, [], INV)
    assert one.cause == "kube-scheduler on cp3" and one.runs == []
    assert "control-plane-restart" not in one.repair and "/etc/kubernetes/manifests/kube-scheduler.yaml" in one.repair


def test_a_lost_alertmanager_peer_is_a_cause_restarted_on_its_host() -> None:
    """Seen with am2 stopped: `UNEXPLAINED: MON-007` named no peer and offered no repair. MON-007
    names the peer it does not see (its monitoring host); the repair restarts it there."""
    results = [failed("MON-007", ("am2", "alertmanager")), failed("WL-006", runbook="workload-spread")]
    found = incidents(results, [], INV)
    assert found[0].cause == "alertmanager on am2"
    assert found[0].repair == "hakit runbook run monitoring-restart host=am2 component=alertmanager"
    assert not found[1].explained and found[1].repair == "WL-006: hakit runbook show workload-spread"


def test_an_unexplained_group_ties_each_repair_to_its_own_check() -> None:
    """Seen with am2 stopped and a workload without PDB: `UNEXPLAINED: MON-007, WL-006` offered
    `hakit runbook show workload-spread`, which repairs WL-006 alone."""
    results = [failed("MON-007"), failed("WL-006", runbook="workload-spread")]
    [loose] = incidents(results, [], INV)
    assert not loose.explained
    assert loose.repair == "MON-007: fix it; WL-006: hakit runbook show workload-spread", loose.repair


def test_the_history_tells_the_story_audit_red_runbook_run_audit_green(tmp_path: Path) -> None:
    import json

    from hakit.report.history import runbook_runs, story, write_history
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    (runs_dir / "control-plane-restart-1.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"event": "start", "at": 150.0, "run": "control-plane-restart-1", "runbook": "control-plane-restart",
         "params": {"host": "cp3", "component": "etcd"}},
        {"event": "end", "at": 170.0, "status": "succeeded"}]) + "\n")
    (runs_dir / "torn.jsonl").write_text('{"event": "sta')
    docs = [{"started": t, "duration": 5, "verdicts": {"etcd": v}, "summary": {"pass": 1, "fail": 0, "warn": 0},
             "results": [], "cluster": "prod"}
            for t, v in ((100.0, "fail"), (200.0, "pass"))]
    runs = runbook_runs(runs_dir)
    assert [r["runbook"] for r in runs] == ["control-plane-restart"], "a torn journal is left out"
    assert [e["kind"] for e in story(docs, runs)] == ["audit", "runbook", "audit"]
    write_history(docs, tmp_path / "history.html", runs)
    html = (tmp_path / "history.html").read_text()
    assert "control-plane-restart host=cp3 component=etcd</code>:\n<b>succeeded</b>" in html


def test_the_vip_answering_not_ready_while_an_apiserver_is_down_is_that_apiservers_consequence() -> None:
    # CI saw this: etcd on cp3 stopped, and haproxy sent API-001's /readyz to cp3's apiserver
    # before its health check had marked it DOWN; the VIP is not a second cause.
    results = [failed("ETCD-002", ("cp3", "etcd")), failed("API-002", ("cp3", "kube-apiserver")),
               failed("API-001", ("", "api"))]
    [one] = incidents(results, [], INV)
    assert one.cause == "etcd on cp3"
    assert {c.split()[0] for c in one.consequences} == {"API-002", "API-001"}
    [alone] = incidents(results[2:], [], INV)   # with every apiserver ready, it is the API path's own
    assert alone.cause == "api"


def test_a_fault_of_a_run_still_going_is_said_so_and_offers_no_repair(tmp_path: Path) -> None:
    """A read-only audit beside a disruptive run sees that run's fault in the journal: it is in
    effect (the audit's exit says so), but the run restores it, so `hakit repair` is not offered;
    a gone run's fault offers it."""
    from types import SimpleNamespace

    import pytest

    from hakit.cluster import ClusterId
    from hakit.faults.journal import Journal
    from hakit.fixtures.plugin import INVENTORY_KEY, write_leftovers
    from hakit.inventory import load
    (tmp_path / "kubeconfig").write_text("{}")
    (tmp_path / "inv.yaml").write_text(
        "cluster: {name: c, kubeconfig: kubeconfig}\napi: {vip: 10.0.0.100}\n"
        "control_plane: {hosts: [{name: cp1, address: 10.0.0.11}]}\n"
        f"disruptive: {{journal: {tmp_path / 'faults.jsonl'}}}\n")
    inv = load(tmp_path / "inv.yaml")
    journal = Journal(inv.fault_journal)
    journal.injecting("stop etcd on cp1", {"kind": "start", "host": "cp1", "component": "etcd"}, ClusterId())

    def said() -> list[str]:
        stash = pytest.Stash()
        stash[INVENTORY_KEY] = inv
        lines: list[str] = []
        write_leftovers(lambda line, **_: lines.append(line), SimpleNamespace(stash=stash, getoption=lambda *a: None))
        return lines
    mine = said()   # this process injected it: a run still going
    assert len(mine) == 1 and "a run still going: it restores its own" in mine[0], mine
    text = (inv.fault_journal.read_text().replace(f'"pid": {os.getpid()}', '"pid": 1'))
    inv.fault_journal.write_text(text)   # pid 1's start time is not this run's: gone
    gone = said()
    assert len(gone) == 2 and "still going" not in gone[0] and "hakit repair --inventory" in gone[1], gone
