"""hakit's HA alert rules: complete, documented, and unit-tested with promtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

RULES = Path(__file__).resolve().parents[2] / "hakit" / "rules"
REQUIRED = {"etcdMembersDown", "etcdInsufficientMembers", "etcdNoLeader", "etcdHighNumberOfLeaderChanges",
            "etcdDatabaseQuotaLowSpace", "KubeAPIDown", "KubeControllerManagerDown", "KubeSchedulerDown",
            "KubeNodeNotReady", "KubeNodeUnreachable", "KubeDeploymentReplicasMismatch", "TargetDown", "Watchdog",
            "HAProxyBackendDown"}


def rules() -> list[dict]:
    return [r for g in yaml.safe_load((RULES / "ha-alerts.yaml").read_text())["groups"] for r in g["rules"]]


def promtool(tmp: Path, rules_text: str) -> subprocess.CompletedProcess[str]:
    if not shutil.which("promtool"):
        pytest.fail("promtool missing: scripts/setup.sh installs Debian's prometheus package")
    (tmp / "ha-alerts.yaml").write_text(rules_text)
    shutil.copy(RULES / "ha-alerts.test.yaml", tmp / "ha-alerts.test.yaml")
    return subprocess.run(["promtool", "test", "rules", str(tmp / "ha-alerts.test.yaml")],
                          capture_output=True, text=True)


def test_every_required_rule_is_shipped_with_its_annotations() -> None:
    assert {r["alert"] for r in rules()} == REQUIRED
    for r in rules():
        assert {"summary", "description", "runbook_url"} <= set(r["annotations"]), r["alert"]
        assert r["labels"]["severity"] in ("critical", "warning", "none"), r["alert"]


def test_every_rule_has_a_unit_test_that_expects_it_to_fire() -> None:
    doc = yaml.safe_load((RULES / "ha-alerts.test.yaml").read_text())
    fired = {case["alertname"] for t in doc["tests"] for case in t.get("alert_rule_test", []) if case.get("exp_alerts")}
    assert fired == REQUIRED


def test_promtool_passes_the_shipped_rules(tmp_path: Path) -> None:
    proc = promtool(tmp_path, (RULES / "ha-alerts.yaml").read_text())
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(("what", "old", "new"), [
    ("inverted condition", 'up{job=~".*etcd.*"} == bool 0', 'up{job=~".*etcd.*"} == bool 1'),
    ("dropped for:", "for: 30s", "for: 0s"),
    ("wrong severity", "severity: critical", "severity: info"),
])
def test_promtool_fails_a_deliberately_wrong_rule(tmp_path: Path, what: str, old: str, new: str) -> None:
    text = (RULES / "ha-alerts.yaml").read_text()
    assert old in text
    proc = promtool(tmp_path, text.replace(old, new, 1))
    assert proc.returncode != 0, f"promtool accepted a rule with a {what}"


def test_audit_rules_pass_their_promtool_tests() -> None:
    """HakitAuditFailed and HakitAuditMissing, on hakit's own audit metrics."""
    out = subprocess.run(["promtool", "test", "rules", "hakit-audit.test.yaml"], cwd=RULES, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout + out.stderr
