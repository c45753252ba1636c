"""Incident mode on the lab: for each broken state, `hakit diagnose` names the cause
first with a repair command whose parameters are filled, and running exactly that
command makes the next diagnosis clean."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys

import pytest

from breaking import hold_fault, hung
from hakit import wait
from hakit.lab.netns import Lab

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("settled")]


def hakit(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HAKIT_INVENTORY": str(lab.paths.inventory), "HAKIT_LAB_DIR": str(lab.paths.root)}
    return subprocess.run([sys.executable, "-m", "hakit.cli", *args], capture_output=True, text=True, env=env,
                          timeout=900, stdin=subprocess.DEVNULL)


def first_incident(lab: Lab, cause: str, timeout: float = 90) -> tuple[str, list[str]]:
    """Diagnose until the first incident names `cause`; (its repair, every incident line)."""
    seen: list[str] = []

    def named() -> str | None:
        out = hakit(lab, "diagnose")
        seen[:] = out.stdout.splitlines()
        incidents = [line for line in seen if line.startswith(("  INCIDENT", "  UNEXPLAINED"))]
        if out.returncode != 0 and incidents and cause in incidents[0]:
            return next(line.split("repair:", 1)[1].strip() for line in seen if "repair:" in line)
        return None
    repair = wait.until(named, timeout, f"diagnose to name {cause!r} first", interval=2.0,
                        why=lambda: " | ".join(seen[:6]))
    return repair, seen


def repaired_by(lab: Lab, repair: str) -> None:
    """Run exactly the repair command(s) diagnose printed; then nothing is left to diagnose."""
    for command in repair.split(" && "):
        argv = shlex.split(command)
        assert argv[0] == "hakit", command
        if argv[1:3] == ["runbook", "run"]:
            argv.insert(3, "--yes")
        done = hakit(lab, *argv[1:])
        assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}{done.stderr}"
    clean = wait.until(lambda: (out := hakit(lab, "diagnose")).returncode == 0 and out, 120,
                       "a clean diagnosis after the repair")
    assert "no incident" in clean.stdout, clean.stdout


@pytest.mark.parametrize(("component", "repair"), [
    ("etcd", "hakit runbook run control-plane-restart host=cp3 component=etcd"),
])
def test_a_stopped_component_is_the_cause_and_its_repair_is_filled_in(lab: Lab, component: str, repair: str) -> None:
    lab.host("cp3").stop(component)
    try:
        got, lines = first_incident(lab, f"{component} on cp3")
        assert got == repair, lines
        assert sum(line.startswith("  INCIDENT") for line in lines) == 1, lines   # consequences folded, not listed
        repaired_by(lab, got)
    finally:
        lab.host("cp3").start(component)


LONG = pytest.mark.skipif(os.environ.get("HAKIT_TEST_LONG") != "1", reason="a long run's (HAKIT_TEST_LONG=1): "
                          "the default run covers its runbook (test_runbooks) and its grouping (test_incidents)")


@LONG
def test_a_frozen_apiserver_is_restarted_by_the_command_diagnose_gives(lab: Lab) -> None:
    with hung(lab, "cp2", "kube-apiserver"):
        got, _ = first_incident(lab, "kube-apiserver on cp2")
        assert got == "hakit runbook run control-plane-restart host=cp2 component=kube-apiserver"
        repaired_by(lab, got)


@LONG
def test_keepalived_stopped_everywhere_is_one_incident_repaired_by_vip_recover(lab: Lab) -> None:
    hosts = [h.name for h in lab.control_planes]
    for h in hosts:
        lab.host(h).stop("keepalived")
    try:
        got, lines = first_incident(lab, "keepalived on " + ", ".join(hosts))
        assert got == "hakit runbook run vip-recover", lines
        repaired_by(lab, got)
    finally:
        for h in hosts:
            lab.host(h).start("keepalived")


def test_a_lost_worker_is_brought_back_by_restarting_its_kubelet(lab: Lab) -> None:
    lab.host("w1").stop("kwok")   # the lab's kubelet
    try:
        got, _ = first_incident(lab, "node on w1")
        assert got == "hakit runbook run control-plane-restart host=w1 component=kubelet"
        repaired_by(lab, got)
    finally:
        lab.host("w1").start("kwok")


def test_a_lost_alertmanager_peer_is_named_and_restarted_by_the_command_diagnose_gives(lab: Lab) -> None:
    """am2 stopped: MON-007 alone fails, and used to be UNEXPLAINED with no repair; the peer it
    does not see is named by its monitoring host, and restarted there by the runbook."""
    lab.host("am2").stop("alertmanager")
    try:
        got, lines = first_incident(lab, "alertmanager on am2")
        assert got == "hakit runbook run monitoring-restart host=am2 component=alertmanager", lines
        assert not any(line.startswith("  UNEXPLAINED") for line in lines), lines
        repaired_by(lab, got)
    finally:
        lab.host("am2").start("alertmanager")


def test_the_alertmanager_the_inventory_names_stopped_is_a_second_incident_beside_etcd(lab: Lab) -> None:
    """Two causes stay two incidents, each with its own repair: the Alertmanager every alert goes
    through (its host found by its URL's address among monitoring.hosts), and cp3's etcd."""
    mon = lab.spec.monitoring_host.name
    lab.host(mon).stop("alertmanager")
    lab.host("cp3").stop("etcd")
    try:
        def both() -> list[str] | None:
            out = hakit(lab, "diagnose").stdout
            incidents = [line.split(": ", 1)[-1] for line in out.splitlines() if line.startswith("  INCIDENT")]
            return out.splitlines() if {"etcd on cp3", f"alertmanager on {mon}"} <= set(incidents) else None
        lines = wait.until(both, 90, f"diagnose to name etcd on cp3 and alertmanager on {mon}, each an incident",
                           interval=2.0)
        assert f"hakit runbook run monitoring-restart host={mon} component=alertmanager" in "\n".join(lines), lines
        assert "hakit runbook run control-plane-restart host=cp3 component=etcd" in "\n".join(lines), lines
    finally:
        lab.host(mon).start("alertmanager")
        lab.host("cp3").start("etcd")


def test_a_killed_disruptive_run_is_the_first_incident_and_hakit_repair_clears_it(lab: Lab) -> None:
    holder = hold_fault(lab)          # stops cp3's scheduler, then dies without restoring it
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    repair, lines = first_incident(lab, "a fault injected by an interrupted hakit run is still in effect")
    assert repair == f"hakit repair --inventory {lab.paths.inventory}", lines
    assert "stop kube-scheduler on cp3" in lines[1], lines
    repaired_by(lab, repair)
