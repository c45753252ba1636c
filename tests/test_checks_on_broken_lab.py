"""Every check can fail: break the lab in exactly one way, see the matching check
fail with a message naming the cause, restore, and see it pass again."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kubernetes import client

from hakit import wait
from hakit.lab import Lab, pki
from hakit.lab.pki import CertPair

pytestmark = pytest.mark.lab


@pytest.fixture(autouse=True)
def settled_lab(lab: Lab) -> Iterator[None]:
    """Each break starts from, and leaves, a lab whose every component is healthy."""
    yield
    wait.until(lambda: all(s.healthy for s in lab.status()) and len(lab.vip_holders()) == 1, 90,
               "the lab to settle after the test")


def run_checks(lab: Lab, tmp_path: Path, *ids: str) -> tuple[int, dict[str, dict]]:
    out = tmp_path / f"results-{'-'.join(ids)}.json"
    argv = [sys.executable, "-m", "hakit.cli", "check", "--inventory", str(lab.paths.inventory)]
    argv += [a for i in ids for a in ("--check", i)] + ["--", f"--hakit-json={out}"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    results = {r["check"]["id"]: r for r in json.loads(out.read_text())["results"]} if out.exists() else {}
    assert results, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.returncode, results


def assert_breaks(lab: Lab, tmp_path: Path, check_id: str, breaker: Callable[[], object], cause: str) -> None:
    """Healthy → pass; broken → fail naming `cause`; restored → pass again."""
    passes = lambda: run_checks(lab, tmp_path, check_id)[1][check_id]["outcome"] == "pass"  # noqa: E731
    wait.until(passes, 60, f"{check_id} to pass on the healthy lab (an earlier test may still be settling)")
    with breaker():  # type: ignore[operator]
        code, results = run_checks(lab, tmp_path, check_id)
        assert code == 1
        assert results[check_id]["outcome"] in ("fail", "warn")
        assert cause in results[check_id]["message"], results[check_id]["message"]
    wait.until(passes, 90, f"{check_id} to pass again after restore")


@contextmanager
def stopped(lab: Lab, host: str, component: str, settle: Callable[[], bool] | None = None) -> Iterator[None]:
    h = lab.host(host)
    h.stop(component)
    try:
        if settle:
            wait.until(settle, 30, f"{host}/{component} stop to be visible")
        yield
    finally:
        h.start(component)


def test_api002_names_the_apiserver_that_is_down(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "API-002", lambda: stopped(lab, "cp3", "kube-apiserver"), "cp3")


def test_api003_names_the_backend_haproxy_sees_down(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "API-003", lambda: stopped(lab, "cp2", "kube-apiserver"), "cp2 DOWN")


@contextmanager
def second_vip_holder(lab: Lab) -> Iterator[None]:
    other = next(h for h in lab.control_planes if not h.holds_vip)
    other.run("ip", "addr", "add", f"{lab.spec.vip}/24", "dev", "eth0")
    try:
        yield
    finally:
        other.run("ip", "addr", "del", f"{lab.spec.vip}/24", "dev", "eth0")


def test_api004_sees_split_brain(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "API-004", lambda: second_vip_holder(lab), "split brain")


def test_etcd002_names_the_stopped_member(lab: Lab, tmp_path: Path) -> None:
    addr = lab.spec.host("cp3").address
    assert_breaks(lab, tmp_path, "ETCD-002", lambda: stopped(lab, "cp3", "etcd"), addr)


def test_etcd007_sees_fault_tolerance_spent(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "ETCD-007", lambda: stopped(lab, "cp2", "etcd"), "one more failure loses quorum")


def test_host003_names_the_stopped_haproxy(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "HOST-003", lambda: stopped(lab, "cp2", "haproxy"), "haproxy on cp2")


@contextmanager
def expiring_apiserver_cert(lab: Lab) -> Iterator[None]:
    hp = lab.paths.host_pki("cp2")
    backup = {p: p.read_bytes() for p in (hp / "apiserver.crt", hp / "apiserver.key")}
    pki.issue(CertPair(hp / "ca.crt", hp / "ca.key"), hp, "apiserver", "kube-apiserver", server=True,
              sans=(lab.spec.host("cp2").address,), days=10)
    try:
        yield
    finally:
        for p, data in backup.items():
            p.write_bytes(data)


def test_host005_names_the_expiring_certificate(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "HOST-005", lambda: expiring_apiserver_cert(lab), "cp2:apiserver.crt expires in")


@contextmanager
def coredns_replicas(lab: Lab, replicas: int) -> Iterator[None]:
    apps = client.AppsV1Api(lab.api())
    apps.patch_namespaced_deployment_scale("coredns", "kube-system", {"spec": {"replicas": replicas}})
    try:
        yield
    finally:
        apps.patch_namespaced_deployment_scale("coredns", "kube-system", {"spec": {"replicas": 2}})


def test_wl003_sees_a_single_replica_critical_workload(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "WL-003", lambda: coredns_replicas(lab, 1), "has 1 replica(s)")


@contextmanager
def rule_removed(lab: Lab, alert: str) -> Iterator[None]:
    import yaml

    from hakit.http import session
    rules = lab.paths.etc("mon", "prometheus", "rules", "ha-alerts.yaml")
    original = rules.read_text()
    doc = yaml.safe_load(original)
    for group in doc["groups"]:
        group["rules"] = [r for r in group["rules"] if r.get("alert") != alert]
    reload_url = f"http://{lab.spec.monitoring_host.address}:9090/-/reload"
    rules.write_text(yaml.safe_dump(doc))
    session().post(reload_url, timeout=10).raise_for_status()
    try:
        yield
    finally:
        rules.write_text(original)
        session().post(reload_url, timeout=10).raise_for_status()


def test_mon003_names_the_missing_rule(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "MON-003", lambda: rule_removed(lab, "etcdNoLeader"), "etcdNoLeader")


def test_reports_carry_no_secrets(lab: Lab, tmp_path: Path) -> None:
    """Keys, client certificates and kubeconfig contents never reach a report."""
    proc = subprocess.run([sys.executable, "-m", "hakit.cli", "audit", "--inventory", str(lab.paths.inventory),
                           "--reports", str(tmp_path / "reports")], capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-1000:]
    kubeconfig = lab.paths.admin_kubeconfig.read_text()
    secrets = [line.split(":", 1)[1].strip() for line in kubeconfig.splitlines()
               if "-data:" in line]
    secrets += [p.read_text().strip().splitlines()[1] for p in lab.paths.root.rglob("*.key")][:50]
    secrets.append(lab.paths.ssh_key.read_text().strip().splitlines()[1])
    texts = {p: p.read_text(errors="replace") for p in (tmp_path / "reports").rglob("*") if p.is_file()}
    assert texts
    for path, text in texts.items():
        assert "PRIVATE KEY" not in text, path
        for secret in secrets:
            assert secret[:40] not in text, f"{path} contains secret material"
