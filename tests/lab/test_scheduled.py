"""Scheduled audits: the in-cluster deployment's least-privilege RBAC decides a real
audit on the lab; audit history flags a regression; audit metrics reach the lab's
Prometheus through its Pushgateway and a failed audit alerts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from breaking import backups_aged, run_checks
from hakit import wait
from hakit.lab import binaries
from hakit.lab.netns import Lab
from hakit.lab.topology import PUSHGATEWAY_PORT
from hakit.prometheus import Prometheus

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("settled")]
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def kubectl(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    kubectl_bin = next(str(d / "kubectl") for d in binaries.bin_dirs() if (d / "kubectl").exists())
    return subprocess.run([kubectl_bin, f"--kubeconfig={lab.paths.admin_kubeconfig}", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def deployed(lab: Lab):  # type: ignore[no-untyped-def]
    applied = kubectl(lab, "apply", "-k", str(DEPLOY))
    assert applied.returncode == 0, applied.stderr
    yield applied.stdout
    kubectl(lab, "delete", "-k", str(DEPLOY), "--wait=false")


def token_inventory(lab: Lab, api: client.ApiClient, tmp_path: Path) -> Path:
    """The lab's inventory, but authenticated as the CronJob's ServiceAccount."""
    token = client.CoreV1Api(api).create_namespaced_service_account_token(
        "hakit-audit", "hakit", {"spec": {"expirationSeconds": 3600}}).status.token
    admin = yaml.safe_load(lab.paths.admin_kubeconfig.read_text())
    cluster = admin["clusters"][0]["cluster"]
    kubeconfig = tmp_path / "sa.conf"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "sa",
        "clusters": [{"name": "lab", "cluster": cluster}],
        "users": [{"name": "hakit-audit", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "lab", "user": "hakit-audit"}}]}))
    inv = yaml.safe_load(lab.paths.inventory.read_text())
    inv["cluster"]["kubeconfig"] = str(kubeconfig)
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(inv))
    return path


def test_the_read_only_role_is_enough_for_the_audit_and_refuses_every_write(
        lab: Lab, api: client.ApiClient, deployed: str, tmp_path: Path) -> None:
    assert "cronjob.batch/hakit-audit created" in deployed or "cronjob.batch/hakit-audit" in deployed
    assert "hakit-disruptive-unbound" not in deployed, "the disruptive role is an opt-in overlay"
    inventory = token_inventory(lab, api, tmp_path)
    code, results = run_checks(inventory, tmp_path)
    bad = {i: (r["outcome"], r["message"]) for i, r in results.items() if r["outcome"] != "pass"}
    assert code == 0 and not bad, bad
    from hakit.kube import api_client
    sa_api = api_client(yaml.safe_load(inventory.read_text())["cluster"]["kubeconfig"])
    core = client.CoreV1Api(sa_api)
    writes = {
        "create a namespace": lambda: core.create_namespace({"metadata": {"name": "hakit-rbac-probe"}}),
        "cordon a node": lambda: core.patch_node("w1", {"spec": {"unschedulable": True}}),
        "evict a pod": lambda: core.create_namespaced_pod_eviction("x", "kube-system", {
            "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "x", "namespace": "kube-system"}}),
        "create a Deployment": lambda: client.AppsV1Api(sa_api).create_namespaced_deployment("default", {
            "metadata": {"name": "x"}, "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
                "metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}}),
    }
    for what, write in writes.items():
        with pytest.raises(ApiException) as e:
            write()
        assert e.value.status == 403, f"{what}: HTTP {e.value.status}"


def test_history_flags_the_audit_that_broke_a_property(lab: Lab, tmp_path: Path) -> None:
    reports = tmp_path / "reports"

    def audit() -> None:
        subprocess.run([sys.executable, "-m", "hakit.cli", "audit", "--inventory", str(lab.paths.inventory),
                        "--property", "etcd", "--reports", str(reports)], capture_output=True, timeout=600)
    audit()
    audit()
    with backups_aged(lab, 30):
        audit()
    out = subprocess.run([sys.executable, "-m", "hakit.cli", "report", "history", str(reports)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "3 audits; 2 regression(s)" in out.stdout, out.stdout + out.stderr
    html = (reports / "history.html").read_text()
    assert "Regressed since the audit before (2)" in html
    assert "etcd quorum and health: pass → fail" in html and "ETCD-008" in html


def test_audit_metrics_reach_prometheus_and_a_failed_audit_alerts(lab: Lab, tmp_path: Path) -> None:
    mon = lab.spec.monitoring_host.address
    push = f"http://{mon}:{PUSHGATEWAY_PORT}"
    prom = Prometheus(f"http://{mon}:9090")
    with backups_aged(lab, 30):
        code, _ = run_checks(lab.paths.inventory, tmp_path, "ETCD-008", options=("--pushgateway", push))
        assert code == 1
        # The pushed failure scraped first: an earlier failing audit of this session may have left
        # HakitAuditFailed firing, and the metrics read then were the ones before this push.
        wait.until(lambda: any(r["value"][1] == "2" for r in prom.query('hakit_check_status{check="ETCD-008"}')), 90,
                   "ETCD-008's failure in the lab's Prometheus")
        wait.until(lambda: any(a["labels"]["alertname"] == "HakitAuditFailed" and a["state"] == "firing"
                               for a in prom.alerts()), 90, "HakitAuditFailed firing in the lab's Prometheus")
    code, _ = run_checks(lab.paths.inventory, tmp_path, "ETCD-008", options=("--pushgateway", push))
    assert code == 0
    wait.until(lambda: prom.query('hakit_audit_success{cluster="hakit-lab"}')[0]["value"][1] == "1", 60,
               "the passing audit's metrics")
