"""Faults are always undone: on success, exception, SIGTERM, and (through the
journal and `hakit repair`) after a SIGKILL. The guard refuses what would cost
quorum, the last apiserver or the VIP, and then touches nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from kubernetes import client

from breaking import hold_fault, hung
from hakit import wait
from hakit.cluster import Cluster
from hakit.faults.base import FaultRefused, journal
from hakit.faults.journal import Journal
from hakit.faults.kinds import LinkDown, Partition, StopComponent
from hakit.lab.netns import Lab

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("settled")]


@pytest.fixture
def short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refusal test's sickness lasts throughout: 5 s of the guard's grace show it as well as 60."""
    monkeypatch.setattr("hakit.faults.base.GUARD_GRACE_SECONDS", 5.0)


def test_a_fault_is_in_effect_inside_the_block_and_undone_after(lab: Lab, control: Cluster) -> None:
    with StopComponent(control, "cp3", "kube-scheduler"):
        assert not lab.host("cp3").is_running("kube-scheduler")
        assert [e.fault for e in journal(control).pending()] == ["stop kube-scheduler on cp3"]
    assert lab.host("cp3").is_running("kube-scheduler")
    assert journal(control).pending() == []


def test_a_signal_right_after_the_journal_line_still_restores_the_fault(lab: Lab, control: Cluster,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The journal names the fault before it is injected: a SIGTERM landing between the two
    must wait for the injection and then restore it, not leave a line nobody restores."""
    written = Journal.injecting

    def then_sigterm(self: Journal, *args: object) -> object:
        entry = written(self, *args)
        os.kill(os.getpid(), signal.SIGTERM)
        return entry
    monkeypatch.setattr(Journal, "injecting", then_sigterm)
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        with StopComponent(control, "cp3", "kube-scheduler"):
            pass
    assert lab.host("cp3").is_running("kube-scheduler") and journal(control).pending() == []


def test_a_kubelet_that_stopped_renewing_is_unsteady_before_its_node_goes_notready(lab: Lab,
                                                                                  control: Cluster) -> None:
    """The steady state reads the node's Lease: a settle must not end on a node whose kubelet
    has stopped renewing but which the node-lifecycle controller has not yet marked NotReady
    (a fault guard then refused the next check on that node, seconds after a settle ended)."""
    seen: list[str] = []

    def named() -> bool:
        seen.append(control.unsteady().get("w1/node", ""))
        return bool(seen[-1])
    with hung(lab, "w1", "kwok"):   # kwok is the lab's kubelet: w1 stops renewing its Lease
        wait.until(named, 60, "w1/node named unsteady", interval=0.5)
    assert "Lease was last renewed" in seen[-1], seen[-1]
    control.wait_steady(120, "w1 renewing its Lease again")


def test_an_exception_inside_the_block_still_restores(lab: Lab, control: Cluster) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with StopComponent(control, "cp2", "kube-scheduler"):
            raise RuntimeError("boom")
    assert lab.host("cp2").is_running("kube-scheduler") and journal(control).pending() == []


def test_sigterm_restores_before_exiting(lab: Lab, control: Cluster) -> None:
    proc = hold_fault(lab)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert lab.host("cp3").is_running("kube-scheduler") and journal(control).pending() == []


def test_after_sigkill_the_journal_names_the_fault_and_repair_undoes_it(lab: Lab, control: Cluster) -> None:
    proc = hold_fault(lab)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    time.sleep(0.5)
    assert not lab.host("cp3").is_running("kube-scheduler"), "SIGKILL gave the fault no chance to restore"
    assert [e.fault for e in journal(control).pending()] == ["stop kube-scheduler on cp3"]
    with pytest.raises(FaultRefused, match="still in effect"):
        with StopComponent(control, "cp1", "kube-scheduler"):
            pass
    env_dir = {"HAKIT_LAB_DIR": str(lab.paths.root), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    out = subprocess.run([sys.executable, "-m", "hakit.cli", "repair"], capture_output=True, text=True, env=env_dir)
    assert out.returncode == 0 and "undone: stop kube-scheduler on cp3" in out.stdout, out.stderr
    assert lab.host("cp3").is_running("kube-scheduler") and journal(control).pending() == []


def test_the_guard_refuses_a_sick_cluster_and_names_what_is_sick(lab: Lab, control: Cluster,
                                                                 short_grace: None) -> None:
    lab.host("cp3").stop("kube-scheduler")
    try:
        with pytest.raises(FaultRefused, match=r"refusing to stop haproxy on cp1: the cluster is not healthy: "
                                               r"cp3/kube-scheduler \(not running; in (\d+) of \1 readings\)"):
            with StopComponent(control, "cp1", "haproxy"):
                pass
        assert lab.host("cp1").is_running("haproxy") and journal(control).pending() == []
    finally:
        lab.host("cp3").start("kube-scheduler")


def test_the_guard_waits_out_what_is_unsteady_for_a_moment(lab: Lab, control: Cluster) -> None:
    """A steady state read once can catch a VIP between two hosts or a Lease renewed late:
    the guard injects once it holds, and refuses only what stays unsteady."""
    lab.host("cp3").stop("kube-scheduler")
    back = threading.Timer(4, lambda: lab.host("cp3").start("kube-scheduler"))
    began = time.monotonic()
    back.start()
    try:
        with StopComponent(control, "cp1", "haproxy") as fault:
            assert not lab.host("cp1").is_running("haproxy")
        assert fault.injected_at - began >= 4, "injected while cp3's scheduler was still stopped"
    finally:
        back.join()
        lab.host("cp3").start("kube-scheduler")
    assert lab.host("cp1").is_running("haproxy") and journal(control).pending() == []


def test_the_guard_refuses_a_fault_while_two_hosts_hold_the_vip(lab: Lab, control: Cluster,
                                                                short_grace: None) -> None:
    """A split brain is no steady state: a fault injected on it would measure nothing."""
    other = next(h for h in lab.control_planes if not h.holds_vip)
    other.run("ip", "addr", "add", f"{lab.spec.vip}/24", "dev", "eth0")
    try:
        with pytest.raises(FaultRefused, match=r"the cluster is not healthy: cluster/VIP \(held by cp\d, cp\d;"):
            with StopComponent(control, other.name, "kube-scheduler"):
                pass
        assert other.is_running("kube-scheduler") and journal(control).pending() == []
    finally:
        other.run("ip", "addr", "del", f"{lab.spec.vip}/24", "dev", "eth0")


def test_the_guard_refuses_to_cost_etcd_quorum_and_touches_nothing(lab: Lab, control: Cluster) -> None:
    lab.host("cp3").stop("etcd")  # already one member down, outside any fault
    try:
        wait.until(lambda: not any(s.healthy for s in lab.status() if s.host == "cp3" and s.component == "etcd"),
                   10, "cp3's etcd down")
        with pytest.raises(FaultRefused, match="2 of 3 voting etcd members are healthy; one fewer loses quorum"):
            with StopComponent(control, "cp2", "etcd"):
                pass
        assert lab.host("cp2").is_running("etcd") and journal(control).pending() == []
    finally:
        lab.host("cp3").start("etcd")


def test_the_guard_refuses_to_stop_the_last_serving_apiserver(lab: Lab, control: Cluster) -> None:
    for name in ("cp2", "cp3"):
        lab.host(name).stop("kube-apiserver")
    try:
        wait.until(lambda: [s.host for s in lab.status() if s.component == "kube-apiserver" and s.healthy] == ["cp1"],
                   30, "only cp1's apiserver serving")
        with pytest.raises(FaultRefused, match="last serving apiserver"):
            with StopComponent(control, "cp1", "kube-apiserver"):
                pass
        assert lab.host("cp1").is_running("kube-apiserver") and journal(control).pending() == []
    finally:
        for name in ("cp2", "cp3"):
            lab.host(name).start("kube-apiserver")


def test_the_guard_refuses_to_take_the_vip_when_no_host_can_take_it_over(lab: Lab, control: Cluster) -> None:
    [holder] = lab.vip_holders()
    others = [h.name for h in lab.control_planes if h.name != holder]
    for name in others:
        lab.host(name).stop("keepalived")
    try:
        with pytest.raises(FaultRefused, match="no other host runs keepalived to take the VIP"):
            with LinkDown(control, holder, seconds=5):
                pass
        assert lab.host(holder).link_is_up and journal(control).pending() == []
    finally:
        for name in others:
            lab.host(name).start("keepalived")


def test_the_guard_refuses_to_lose_a_node_a_pdb_cannot_spare(lab: Lab, control: Cluster, api) -> None:
    """One replica pinned to w2 behind minAvailable: 1 — losing w2 would break the PDB."""
    ns = "hakit-test-pdb"
    labels = {"app": "solo"}
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespace({"metadata": {"name": ns}})
    try:
        apps.create_namespaced_deployment(ns, {"metadata": {"name": "solo"}, "spec": {
            "replicas": 1, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
                "nodeSelector": {"kubernetes.io/hostname": "w2"},
                "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}}})
        client.PolicyV1Api(api).create_namespaced_pod_disruption_budget(ns, {
            "metadata": {"name": "solo"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": labels}}})
        wait.until(lambda: any(p.status.phase == "Running" for p in core.list_namespaced_pod(ns).items),
                   60, "solo Running")
        wait.until(lambda: client.PolicyV1Api(api).read_namespaced_pod_disruption_budget("solo", ns).status
                   .current_healthy == 1, 30, "the PDB to count the pod")
        with pytest.raises(FaultRefused, match=f"PDB {ns}/solo: 1 of its pods on this node, 0 disruption"):
            with StopComponent(control, "w2", "kubelet"):
                pass
        assert lab.host("w2").is_running("kwok") and journal(control).pending() == []
    finally:
        core.delete_namespace(ns)


def test_a_link_fault_heals_itself_and_the_restore_waits_for_it(lab: Lab, control: Cluster) -> None:
    with LinkDown(control, "cp3", seconds=3):
        wait.until(lambda: not lab.host("cp3").link_is_up, 5, "cp3's link down")
    assert lab.host("cp3").link_is_up and journal(control).pending() == []


def test_partition_fault_is_healed_on_exit(lab: Lab, control: Cluster) -> None:
    with Partition(control, "cp3"):
        assert lab.host("cp3").is_partitioned
    assert not lab.host("cp3").is_partitioned and journal(control).pending() == []


def test_sigterm_while_a_fault_is_set_aside_restores_both(lab: Lab, control: Cluster, tmp_path: Path) -> None:
    """WL-D01 sets its lost worker aside while VIP-D01 measures beside it (the overlap rule):
    a SIGTERM then, with two faults in effect, restores both before the run exits."""
    proc = subprocess.Popen([sys.executable, "-m", "hakit.cli", "check", "--disruptive", "--inventory",
                             str(lab.paths.inventory), "--check", "WL-D01", "--check", "VIP-D01", "--check", "MON-D01",
                             "--", "-k", "rescheduled or keepalived_stops or KubeNodeNotReady"],
                            stdout=(log := (tmp_path / "run.log").open("w")), stderr=subprocess.STDOUT)
    try:
        def both_in_effect() -> bool:
            stops = [e.fault for e in journal(control).pending() if e.fault.startswith("stop ")]
            return any(f.startswith("stop kubelet on w") for f in stops) and \
                any(f.startswith("stop keepalived on cp") for f in stops)
        wait.until(both_in_effect, 240, "WL-D01's worker set aside and VIP-D01's fault beside it", interval=0.2)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:   # never SIGKILL first: that would leave both faults for the next test
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
    assert journal(control).pending() == [], (tmp_path / "run.log").read_text()[-2000:]
    control.wait_steady(180, "every component and node healthy again")
