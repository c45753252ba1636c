"""The lab's pure parts: its topology and the identity of a recorded process."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hakit.lab.topology import LabSpec


def test_lab_topology_addresses() -> None:
    spec = LabSpec(subnet="10.9.8.0/24", workers=2)
    assert spec.vip == "10.9.8.100" and spec.gateway == "10.9.8.1"
    assert [h.address for h in spec.control_plane_hosts] == ["10.9.8.11", "10.9.8.12", "10.9.8.13"]
    assert [h.name for h in spec.worker_hosts] == ["w1", "w2"]
    with pytest.raises(ValueError):
        LabSpec(subnet="10.0.0.0/16")


def test_a_recorded_pid_is_the_component_only_while_its_start_time_matches(tmp_path: Path) -> None:
    """pid_max is 32768 here: a stopped component's pid was another process's an hour later,
    and `stop` killed it (a test session, once). The state keeps each pid with its start time."""
    import json

    from hakit.lab.paths import LabPaths
    from hakit.lab.procs import State
    state = State(LabPaths(tmp_path))
    state.save({"processes": {}})
    with subprocess.Popen(["sleep", "30"]) as proc:
        try:
            state.set_pid("cp1/etcd", proc.pid)
            assert state.pid("cp1/etcd") == proc.pid and state.pids() == {proc.pid}
            doc = json.loads(state.paths.state_file.read_text())
            doc["processes"]["cp1/etcd"]["started"] -= 1   # the same pid, started at another moment
            state.save(doc)
            assert state.pid("cp1/etcd") is None and state.pids() == set()
        finally:
            proc.kill()
    state.set_pid("cp1/etcd", proc.pid)
    assert state.pid("cp1/etcd") is None, "an exited process is nobody's"


def test_lab_ctl_processes_writing_at_once_lose_no_record(tmp_path: Path) -> None:
    """The lab's ctl is one process per command; a runbook restarting every host's kubelet at
    once (etcd-restore-snapshot) lost a host's record to another's write, and a running kwok
    read as stopped. Six processes, each recording 40 components, must leave all 240."""
    import os
    import sys
    code = ("import sys; from pathlib import Path; from hakit.lab.paths import LabPaths; "
            "from hakit.lab.procs import State; s = State(LabPaths(Path(sys.argv[1]))); "
            "[s.set_pid(f'{sys.argv[2]}/c{j}', int(sys.argv[3])) for j in range(40)]")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), f"h{i}", str(os.getpid())])
             for i in range(6)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    from hakit.lab.paths import LabPaths
    from hakit.lab.procs import State
    assert len(State(LabPaths(tmp_path)).load()["processes"]) == 240
