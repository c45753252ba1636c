"""Runbooks on the kubeadm lab, break → run → green, through kubeadm's own mechanisms:
a hung apiserver container, an etcd member whose data is gone, a worker whose kubelet
died, a load balancer config that drifted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kubernetes import client

from breaking import result, run_checks
from hakit import wait
from hakit.cluster import Cluster
from hakit.lab.kubeadm import KubeadmLab

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def runbook(klab: KubeadmLab, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "hakit.cli", "runbook", "run", *args, "--yes", "--inventory", str(klab.inventory)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)


def fails(klab: KubeadmLab, tmp_path: Path, check: str, cause: str, within: float = 90) -> None:
    got = wait.until(lambda: (r := result(klab.inventory, tmp_path, check))["outcome"]
                     in ("fail", "warn") and r, within, f"{check} to see the break")
    assert cause in got["message"], got["message"]


@contextmanager
def hung_apiserver(cluster: Cluster, host: str) -> Iterator[None]:
    """The apiserver's process frozen (SIGSTOP): its container runs, nothing answers."""
    pattern = "^([^ ]*/)?kube-apiserver( |$)"
    cluster.must(host, "freezing the apiserver", "pkill --signal STOP -f %s", pattern)
    try:
        yield
    finally:
        cluster.run(host, "pkill --signal CONT -f %s", pattern)   # harmless once it was replaced


def test_control_plane_restart_replaces_a_hung_apiserver_container(klab: KubeadmLab, kcluster: Cluster,
                                                                   tmp_path: Path) -> None:
    with hung_apiserver(kcluster, "cp2"):
        fails(klab, tmp_path, "API-002", "cp2")
        done = runbook(klab, "control-plane-restart", "host=cp2", "component=kube-apiserver")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS  API-002" in done.stdout


def test_etcd_replace_member_rebuilds_a_member_whose_data_is_lost(klab: KubeadmLab, kcluster: Cluster,
                                                                  tmp_path: Path) -> None:
    """The manifest parked, the data dir's contents gone (a dead disk), then replaced."""
    kcluster.stop("cp3", "etcd")
    kcluster.must("cp3", "losing the member's data", "rm -rf /var/lib/etcd/member")
    # Back in its manifest, the member crash-loops ("already bootstrapped"): that is the break, so
    # `start`'s wait for a running container is not asked for (it may never see one).
    kcluster.must("cp3", "putting etcd's manifest back",
                  "mv /etc/kubernetes/hakit-parked/etcd.yaml /etc/kubernetes/manifests/")
    try:
        fails(klab, tmp_path, "ETCD-002", kcluster.addresses["cp3"])
        done = runbook(klab, "etcd-replace-member", "host=cp3")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "PASS  ETCD-002" in done.stdout or "PASS  ETCD-001" in done.stdout, done.stdout
        _, results = run_checks(klab.inventory, tmp_path, "ETCD-001", "ETCD-002", "ETCD-003")
        assert all(r["outcome"] == "pass" for r in results.values()), results
    finally:
        kcluster.start("cp3", "etcd")


def test_etcd_restore_snapshot_rebuilds_a_cluster_that_lost_quorum(klab: KubeadmLab, kcluster: Cluster,
                                                                  tmp_path: Path) -> None:
    """Two members stopped for good (manifests parked): quorum is lost. A kubeadm host has no
    etcdutl, so the restore runs the one in etcd's image through containerd. What the snapshot
    held comes back, what was written after it is gone, and the checks pass."""
    core = client.CoreV1Api(kcluster.api)
    before, after = "hakit-restore-before", "hakit-restore-after"
    for name in (before, after):
        if name in {c.metadata.name for c in core.list_namespaced_config_map("default").items}:
            core.delete_namespaced_config_map(name, "default")   # an earlier, failed run's
    for name in (before, after):
        core.create_namespaced_config_map("default", {"metadata": {"name": name}})
        if name == before:
            backup = runbook(klab, "etcd-backup", f"dir={tmp_path / 'snaps'}")
            assert backup.returncode == 0, backup.stdout + backup.stderr
    [snap] = (tmp_path / "snaps").glob("*.db")
    try:
        for host in ("cp2", "cp3"):
            kcluster.stop(host, "etcd")
        done = runbook(klab, "etcd-restore-snapshot", f"snapshot={snap}")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "quorum is lost" in done.stdout and "etcdutl: from " in done.stdout, done.stdout
    finally:
        for host in ("cp1", "cp2", "cp3"):
            for component in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
                kcluster.start(host, component)
            kcluster.run(host, "rm -rf /var/lib/etcd/.hakit-*")
    names = {c.metadata.name for c in core.list_namespaced_config_map("default").items}
    assert before in names and after not in names, names
    core.delete_namespaced_config_map(before, "default")


@pytest.mark.skipif(os.environ.get("HAKIT_TEST_LONG") != "1",
                    reason="a long run's (HAKIT_TEST_LONG=1): a worker takes ~50 s to turn NotReady and the drain "
                           "waits for it to come back; the default run drains on the netns lab")
def test_node_drain_replace_evicts_real_pods_from_a_lost_worker(klab: KubeadmLab, kcluster: Cluster,
                                                               tmp_path: Path) -> None:
    """w2's kubelet stopped (NotReady), the node drained through the eviction API while it
    is down, its kubelet back, the node uncordoned."""
    core = client.CoreV1Api(kcluster.api)
    kcluster.stop("w2", "kubelet")
    proc = None
    try:
        fails(klab, tmp_path, "WL-001", "w2", within=150)
        journals = Path(os.environ["HAKIT_RUNBOOK_DIR"])
        before = set(journals.glob("node-drain-replace-*.jsonl"))
        proc = subprocess.Popen([sys.executable, "-m", "hakit.cli", "runbook", "run", "node-drain-replace", "--yes",
                                 "node=w2", "--inventory", str(klab.inventory)], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

        def drained() -> bool:
            new = set(journals.glob("node-drain-replace-*.jsonl")) - before
            return any(json.loads(line).get("step") == "drain" and json.loads(line).get("status") == "done"
                       for path in new for line in path.read_text().splitlines())
        wait.until(drained, 240, "the drain to finish", interval=1.0)
    finally:
        kcluster.start("w2", "kubelet")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert not core.read_node("w2").spec.unschedulable and "PASS  WL-001" in out, out


def test_provision_api_lb_puts_a_drifted_haproxy_back(klab: KubeadmLab, kcluster: Cluster, tmp_path: Path) -> None:
    """cp2's haproxy.cfg hand-edited to drop a backend and reloaded: API-003 sees it."""
    kcluster.must("cp2", "drifting haproxy.cfg", "sed -i '/server cp3 /d' /etc/haproxy/haproxy.cfg && "
                  "systemctl restart haproxy")
    fails(klab, tmp_path, "API-003", "cp2")
    done = runbook(klab, "provision-api-lb", "router_id=78")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS  API-003" in done.stdout
