"""`lab down` removes everything, even after the `up` process was SIGKILLed midway."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hakit.lab import net, procs
from hakit.lab.net import free_subnet
from hakit.lab.netns import Lab

pytestmark = pytest.mark.lab
PREFIX = "hkd"


def _leftovers(root: Path) -> list[str]:
    found = [f"netns {ns}" for ns in net.existing_netns(PREFIX)]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    found += [f"link {line.split(':')[1].strip()}" for line in links.splitlines() if f" {PREFIX}" in line]
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if str(root).encode() in cmdline and procs.alive(int(pid)) and b"pytest" not in cmdline:
                found.append(f"process {pid}: {cmdline[:80]!r}")
    if root.exists():
        found.append(f"directory {root}")
    return found


def test_down_after_sigkilled_up_leaves_nothing(tmp_path: Path, lab: Lab) -> None:
    """...and touches no other lab: the session's lab runs throughout."""
    root = tmp_path / "lab"
    env = {**os.environ, "HAKIT_LAB_DIR": str(root)}
    hakit = [sys.executable, "-m", "hakit.cli"]
    up = subprocess.Popen([*hakit, "lab", "up", "--prefix", PREFIX, "--subnet", free_subnet()], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # Kill it once the apiservers are being started: etcd runs, namespaces exist.
    deadline = time.monotonic() + 120
    for line in up.stdout:  # type: ignore[union-attr]
        if "kube-apiserver" in line or time.monotonic() > deadline:
            break
    up.send_signal(signal.SIGKILL)
    up.wait()
    assert net.existing_netns(PREFIX), "the test meant to kill `up` while the lab was half built"

    for _ in range(2):  # idempotent: a second down is a no-op
        done = subprocess.run([*hakit, "lab", "down"], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    time.sleep(0.5)
    assert _leftovers(root) == []
    assert all(s.pid for s in lab.status()), "down of one lab stopped processes of another"
