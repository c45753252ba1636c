"""Fixtures for the kubeadm tier: one kubeadm lab per session (LXC system containers
installed by hakit's provisioning runbooks), always removed.

`make test` runs this tier beside the netns session (scripts/test.sh); the kernel state both
labs share (swap) is changed only while no test of this tier is under way (tests/conftest.py's
kernel_state_steady, and the lab's bring-up below). HAKIT_TEST_KEEP_LAB=1 keeps it up and reuses it on the next run
when its API answers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # tests/breaking.py

from breaking import machine_state
from hakit import wait
from hakit.cluster import Cluster
from hakit.cluster.probes import readyz
from hakit.errors import LabError
from hakit.inventory import Inventory, load
from hakit.lab import nodes
from hakit.lab.kubeadm import KubeadmLab
from hakit.lab.net import free_subnet

ROOT = Path(os.environ.get("HAKIT_TEST_KUBEADM_LAB_DIR", Path.home() / ".local/state/hakit/test-kubeadm-lab"))


def _sigterm_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt("SIGTERM")


@pytest.fixture(scope="session")
def klab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeadmLab]:
    keep = os.environ.get("HAKIT_TEST_KEEP_LAB") == "1"
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    os.environ["HAKIT_RUNBOOK_DIR"] = str(tmp_path_factory.mktemp("runbooks"))
    if keep and ROOT.exists():
        try:
            existing = KubeadmLab.load(ROOT)
            if readyz(load(existing.inventory).vip_url) == "ok":
                yield existing
                return
        except Exception:  # noqa: BLE001 - not reusable: rebuilt below
            pass
    if ROOT.exists():   # a crashed run's: its containers, bridge and files
        try:
            KubeadmLab.load(ROOT).down(progress=lambda _: None)
        except LabError:
            nodes.destroy(nodes.Spec(subnet="0.0.0.0/24", prefix="hkk"), nodes.Paths(ROOT))
    # the netns tier takes the first free subnet
    lab = KubeadmLab(nodes.Spec(subnet=free_subnet(skip=1), prefix="hkk"), nodes.Paths(ROOT))
    try:
        with machine_state(change=False):   # kubeadm's preflight and the kubelets read swap
            lab.up(progress=lambda msg: print(f"[kubeadm lab] {msg}"))
        yield lab
    finally:
        if not keep:
            lab.down(progress=lambda _: None)
            try:   # a container's last processes may take a moment to be reaped
                wait.until(lambda: not leftovers(ROOT, "hkk"), 30, "nothing of the lab left", interval=1.0)
            except wait.WaitTimeout:
                pytest.fail(f"`lab down` left behind: {', '.join(leftovers(ROOT, 'hkk'))}", pytrace=False)


def leftovers(root: Path, prefix: str) -> list[str]:
    """What a removed lab must not leave, looked for without the lab's code: a running
    container, a mount under its directory, a link of its prefix, a process naming its directory."""
    running = subprocess.run(["lxc-ls", "-P", str(root / "lxc"), "--running", "-1"], capture_output=True,
                             text=True).stdout.split()
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines() if str(root) in line]
    links = [name for name in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.split()
             if name.startswith(prefix)]
    procs = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(root).encode() in cmdline.read_bytes():
                procs.append(cmdline.parent.name)
        except OSError:   # gone meanwhile
            pass
    return [f"container {c}" for c in running] + [f"mount {m}" for m in mounts] + \
        [f"link {x}" for x in links] + [f"process {pid}" for pid in procs]


@pytest.fixture(scope="session")
def kinv(klab: KubeadmLab) -> Inventory:
    return load(klab.inventory)


@pytest.fixture(scope="session")
def kcluster(kinv: Inventory) -> Cluster:
    """The lab reached as any cluster: SSH, kubeadm's default host control."""
    return Cluster(kinv)


@pytest.fixture
def ksettled(kcluster: Cluster) -> None:
    """Start from the steady state a disruptive guard asks for. After an earlier test's etcd
    member comes back, its apiserver stays not ready until the kubelet's liveness probe (/livez,
    which includes etcd) restarts it: measured here, 38 s after a 120 s etcd outage. A full run
    here saw every guard refuse on it."""
    kcluster.wait_steady(360, "the cluster healthy before the next fault", interval=5.0)
