"""`hakit lab up --kubeadm` is idempotent, as `hakit lab up` is: on a healthy lab it says so
and exits 0; after this machine restarted (every container stopped, the bridge and the pager
gone) it starts the kept containers again and waits for the steady state, where it used to
refuse with "a kubeadm lab exists". Last in the tier (its file sorts last): a restart ends every
SSH session the other tests' fixtures hold."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from hakit.lab import nodes
from hakit.lab.kubeadm import KubeadmLab

pytestmark = pytest.mark.usefixtures("ksettled")


def lab_cli(klab: KubeadmLab, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HAKIT_KUBEADM_LAB_DIR": str(klab.paths.root)}
    return subprocess.run([sys.executable, "-m", "hakit.cli", "lab", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, stdin=subprocess.DEVNULL)


def test_lab_up_on_a_healthy_kubeadm_lab_says_so(klab: KubeadmLab) -> None:
    done = lab_cli(klab, "up", "--kubeadm", timeout=180)
    assert done.returncode == 0 and "a kubeadm lab is up" in done.stdout, done.stdout + done.stderr


def test_after_a_restart_lab_up_starts_the_kept_lab_again(klab: KubeadmLab) -> None:
    for node in klab.spec.nodes:   # a clean shutdown of each, as a machine's restart does
        nodes.stop(klab.paths, node.name)
    if (pid := klab.pager()) is not None:
        os.killpg(pid, signal.SIGTERM)
    subprocess.run(["ip", "link", "delete", klab.spec.bridge], check=True)
    assert all(nodes.state(klab.paths, n.name) == "STOPPED" for n in klab.spec.nodes)
    began = time.monotonic()
    done = lab_cli(klab, "up", "--kubeadm", timeout=900)
    took = time.monotonic() - began
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "is stopped" in done.stdout and "starting its containers again" in done.stdout, done.stdout
    print(f"hakit lab up --kubeadm on a stopped lab: steady again in {took:.0f} s")   # a figure, not asserted
    status = lab_cli(klab, "status", "--kubeadm", timeout=300)
    assert status.returncode == 0, status.stdout[-3000:]
    assert klab.pager() is not None, "the pager was not started again"
