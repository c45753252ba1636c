"""Monitoring checks fail on a lab broken in exactly their way, and pass once restored."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from breaking import assert_breaks, file_changed, stopped

from hakit.http import session
from hakit.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("settled")]


def _reload(lab: Lab, port: int) -> None:
    session().post(f"http://{lab.spec.monitoring_host.address}:{port}/-/reload", timeout=10).raise_for_status()


def test_mon001_sees_prometheus_down(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "MON-001", lambda: stopped(lab, "mon/prometheus"), "is not ready")


def test_mon002_names_the_target_that_is_down(lab: Lab, tmp_path: Path) -> None:
    cp2 = lab.spec.host("cp2").address
    assert_breaks(lab, tmp_path, "MON-002", lambda: stopped(lab, "cp2/kube-scheduler"), f"kube-scheduler {cp2}:10259",
                  within=30)


def test_mon003_names_the_missing_rule(lab: Lab, tmp_path: Path) -> None:
    rules = lab.paths.etc("mon", "prometheus", "rules", "ha-alerts.yaml")

    def without_no_leader(text: str) -> str:
        doc = yaml.safe_load(text)
        for group in doc["groups"]:
            group["rules"] = [r for r in group["rules"] if r.get("alert") != "etcdNoLeader"]
        return yaml.safe_dump(doc)

    assert_breaks(lab, tmp_path, "MON-003",
                  lambda: file_changed(rules, without_no_leader, after=lambda: _reload(lab, 9090)), "etcdNoLeader")


def test_mon004_sees_alertmanager_down(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "MON-004", lambda: stopped(lab, "mon/alertmanager"), "Alertmanager")


def test_mon005_sees_critical_alerts_routed_to_a_null_receiver(lab: Lab, tmp_path: Path) -> None:
    conf = lab.paths.etc("mon", "alertmanager", "alertmanager.yml")

    def null_route(text: str) -> str:
        doc = yaml.safe_load(text)
        doc["receivers"].append({"name": "null"})
        doc["route"]["routes"][0]["receiver"] = "null"
        return yaml.safe_dump(doc)

    assert_breaks(lab, tmp_path, "MON-005", lambda: file_changed(conf, null_route, after=lambda: _reload(lab, 9093)),
                  "receiver 'null', which has no integration")


def test_mon006_names_the_rule_that_fails_to_evaluate(lab: Lab, tmp_path: Path) -> None:
    rules = lab.paths.etc("mon", "prometheus", "rules", "ha-alerts.yaml")

    def with_broken_rule(text: str) -> str:
        doc = yaml.safe_load(text)
        # valid PromQL that fails at evaluation: both sides have three etcd series
        doc["groups"][0]["rules"].append({"alert": "HakitBrokenRule", "expr": 'up{job="etcd"} + on() up{job="etcd"}'})
        return yaml.safe_dump(doc)

    assert_breaks(lab, tmp_path, "MON-006",
                  lambda: file_changed(rules, with_broken_rule, after=lambda: _reload(lab, 9090)), "HakitBrokenRule",
                  within=30)


def test_mon007_sees_a_missing_alertmanager_peer(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "MON-007", lambda: stopped(lab, "am2/alertmanager"),
                  "Alertmanager sees 1 of 2 cluster peers", within=90)
