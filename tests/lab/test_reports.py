"""Reports of a real audit: complete, and free of secrets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hakit.lab.netns import Lab

pytestmark = pytest.mark.lab


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


def test_audit_writes_every_report(lab: Lab, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "hakit.cli", "audit", "--inventory", str(lab.paths.inventory),
                           "--reports", str(tmp_path)], capture_output=True, text=True, timeout=300)
    latest = tmp_path / "latest"
    assert {p.name for p in latest.iterdir()} == {"audit.html", "results.json", "pytest.html", "junit.xml"}
    html = (latest / "audit.html").read_text()
    assert "<link" not in html and "<script src" not in html, "the report must open from disk alone"
    assert "API-004" in html and "etcd quorum and health" in html
    rerendered = tmp_path / "again.html"
    assert subprocess.run([sys.executable, "-m", "hakit.cli", "report", str(latest / "results.json"), "-o",
                           str(rerendered)], capture_output=True).returncode == 0
    assert rerendered.read_text().count("class=\"check") == html.count("class=\"check")
    doc = json.loads((latest / "results.json").read_text())
    assert doc["cluster_facts"]["nodes"] >= 6 and doc["cluster_facts"]["control_plane_nodes"] == 3
    assert doc["kubernetes_api_requests"] < 20, "one LIST per kind, not one call per object"
    assert proc.returncode in (0, 1)
    # hakit's own output, not pytest's: one line per check naming it, then the verdicts
    lines = proc.stdout.splitlines()
    ids = {r["check"]["id"] for r in doc["results"]}
    shown = {line.split()[1].split("[")[0] for line in lines if line.split()[:1] in (["PASS"], ["FAIL"], ["WARN"],
                                                                                      ["ERROR"], ["SKIP"])}
    assert len(lines) <= 60 and shown >= ids and len(ids) >= 37, proc.stdout
    assert "test session starts" not in proc.stdout and "PASSED" not in proc.stdout, proc.stdout
    assert any(line.split()[:2] == ["PASS", "api-endpoint"] for line in lines), proc.stdout


def test_check_verbose_is_pytest_own_output(lab: Lab) -> None:
    proc = subprocess.run([sys.executable, "-m", "hakit.cli", "check", "-v", "--inventory", str(lab.paths.inventory),
                           "--check", "API-004"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "test session starts" in proc.stdout, proc.stdout + proc.stderr
    assert "test_exactly_one_vip_holder PASSED" in proc.stdout, proc.stdout
