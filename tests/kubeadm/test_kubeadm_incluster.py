"""The scheduled audit, run for real: hakit's image built (a debootstrapped Python base plus
the wheel, as the Dockerfile does), `kubectl apply -k deploy/` with what a user changes
(their inventory, the etcd client certificate and SSH access as Secrets, the image, a
volume for the history), a Job created from the CronJob, and its audit passing inside a pod on a worker,
its reports, history and metrics left on the volume."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from hakit import wait
from hakit.cluster import Cluster, kubeadm
from hakit.inventory import Inventory
from hakit.lab import binaries, bundle
from hakit.lab.kubeadm import KubeadmLab

pytestmark = [pytest.mark.lab, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
HISTORY = "/var/lib/hakit-history"      # the hostPath behind the history volume, on w1
# In a pod there is no backup directory (the snapshots are where etcd-backup ran): that
# skip is expected, and said so, rather than silently passing.
EXPECTED_SKIPS = ("ETCD-008",)


def kubectl(klab: KubeadmLab, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binaries.path("kubectl"), f"--kubeconfig={klab.kubeconfig}", *args],
                          capture_output=True, text=True, timeout=300)


def in_cluster_inventory(klab: KubeadmLab, kinv: Inventory) -> dict:
    doc = yaml.safe_load(klab.inventory.read_text())
    return {"version": doc["version"], "cluster": {"name": "hakit-kubeadm-lab", "kubeconfig": "in-cluster"},
            "api": doc["api"], "control_plane": {"hosts": doc["control_plane"]["hosts"]},
            "etcd": {"endpoints": "discover", "ca": "/etc/hakit/etcd/ca.crt",
                     "cert": "/etc/hakit/etcd/healthcheck-client.crt", "key": "/etc/hakit/etcd/healthcheck-client.key"},
            "monitoring": {k: v for k, v in doc["monitoring"].items() if k in ("prometheus", "alertmanager",
                                                                              "alertmanager_peers")},
            "workloads": doc["workloads"],
            "access": {"ssh": {"user": "root", "key": "/etc/hakit/ssh/id_ed25519", "config": "/etc/hakit/ssh/config"}}}


def overlay(klab: KubeadmLab, kinv: Inventory, ref: str, where: Path) -> Path:
    """deploy/ as a user adapts it: their inventory, the etcd certificate, the image, storage."""
    shutil.copytree(REPO / "deploy", where)
    (where / "inventory.yaml").write_text(yaml.safe_dump(in_cluster_inventory(klab, kinv)))
    certs = where / "etcd"
    shutil.copytree(klab.kubeconfig.parent / "etcd-client", certs)
    ssh = where / "ssh"   # the host checks' SSH access, as a Secret: key, known hosts, config
    ssh.mkdir()
    shutil.copy2(klab.paths.ssh_key, ssh / "id_ed25519")
    shutil.copy2(klab.paths.known_hosts, ssh / "known_hosts")
    (ssh / "config").write_text("Host *\n  User root\n  IdentityFile /etc/hakit/ssh/id_ed25519\n  IdentitiesOnly yes\n"
                                "  UserKnownHostsFile /etc/hakit/ssh/known_hosts\n  StrictHostKeyChecking yes\n")
    (where / "pv.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "hakit-history-lab"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "",
                 "hostPath": {"path": HISTORY},
                 "claimRef": {"namespace": "hakit", "name": "hakit-history"},
                 "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                     {"key": "kubernetes.io/hostname", "operator": "In", "values": ["w1"]}]}]}}}}))
    name, tag = ref.rsplit(":", 1)
    command = ("hakit audit --inventory /etc/hakit/inventory.yaml --reports /var/lib/hakit/reports "
               "--metrics /var/lib/hakit/hakit.prom " + " ".join(f"--accept-skip {c}" for c in EXPECTED_SKIPS)
               + "; code=$?; hakit report history /var/lib/hakit/reports; exit $code")
    container = "/spec/jobTemplate/spec/template/spec/containers/0"
    kust = yaml.safe_load((where / "kustomization.yaml").read_text())
    kust["resources"].append("pv.yaml")
    kust["images"] = [{"name": "hakit", "newName": name, "newTag": tag}]
    kust["secretGenerator"] = [{"name": f"hakit-{d.name}", "namespace": "hakit",
                                "files": [f"{d.name}/{f.name}" for f in sorted(d.iterdir())]} for d in (certs, ssh)]
    kust["patches"] = [{"target": {"kind": "CronJob", "name": "hakit-audit"}, "patch": json.dumps([
        {"op": "replace", "path": f"{container}/args/0", "value": command},
        {"op": "add", "path": f"{container}/volumeMounts/-",
         "value": {"name": "etcd-client", "mountPath": "/etc/hakit/etcd", "readOnly": True}},
        {"op": "add", "path": "/spec/jobTemplate/spec/template/spec/volumes/-",
         "value": {"name": "etcd-client", "secret": {"secretName": "hakit-etcd", "defaultMode": 0o440}}},
        {"op": "add", "path": f"{container}/volumeMounts/-",
         "value": {"name": "ssh", "mountPath": "/etc/hakit/ssh", "readOnly": True}},
        {"op": "add", "path": "/spec/jobTemplate/spec/template/spec/volumes/-",
         "value": {"name": "ssh", "secret": {"secretName": "hakit-ssh", "defaultMode": 0o440}}},
    ])}]
    (where / "kustomization.yaml").write_text(yaml.safe_dump(kust, sort_keys=False))
    return where


def test_a_job_from_the_cronjob_audits_the_cluster_from_inside(klab: KubeadmLab, kinv: Inventory,
                                                               kcluster: Cluster, tmp_path: Path) -> None:
    base = Path(subprocess.run(["bash", str(binaries.BUILD_SCRIPT.parent / "pyrootfs.sh"), "--print-dir"],
                               capture_output=True, text=True, check=True).stdout.split()[-1])
    archive, ref = bundle.hakit_image(binaries.cache_dir().parent / "images", base, REPO)
    for worker in ("w1", "w2"):
        kubeadm.import_image(kcluster, worker, archive)
    kcluster.must("w1", "making the history directory", "rm -rf %s && mkdir -p %s && chown 65532:65532 %s",
                  HISTORY, HISTORY, HISTORY)
    deploy = overlay(klab, kinv, ref, tmp_path / "deploy")
    applied = kubectl(klab, "apply", "-k", str(deploy))
    assert applied.returncode == 0, applied.stderr
    try:
        created = kubectl(klab, "create", "job", "--from=cronjob/hakit-audit", "hakit-audit-now", "-n", "hakit")
        assert created.returncode == 0, created.stderr

        def finished() -> str:
            status = json.loads(kubectl(klab, "get", "job", "hakit-audit-now", "-n", "hakit", "-o", "json").stdout
                                or "{}").get("status", {})
            return "succeeded" if status.get("succeeded") else "failed" if status.get("failed") else ""
        outcome = wait.until(finished, 300, "the audit Job to finish", interval=3.0)
        logs = kubectl(klab, "logs", "job/hakit-audit-now", "-n", "hakit").stdout
        assert outcome == "succeeded", logs[-3000:]
        for prop in ("api-endpoint", "etcd", "control-plane", "workloads", "monitoring", "hosts"):
            assert f"PASS      {prop}" in logs, logs[-3000:]
        left = kcluster.must("w1", "listing the history", "ls %s %s/reports", HISTORY, HISTORY)
        assert "hakit.prom" in left and "history.html" in left, left
        assert "hakit_audit_success 1" in kcluster.must("w1", "reading the metrics", "cat %s/hakit.prom", HISTORY)
    finally:
        kubectl(klab, "delete", "-k", str(deploy), "--wait=false")
