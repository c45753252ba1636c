"""Monitoring checks fail on a lab broken in exactly their way, and pass once restored."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from breaking import assert_breaks, file_changed, run_checks, stopped
from hakit import wait
from hakit.http import session
from hakit.lab.netns import Lab
from hakit.prometheus import Prometheus

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


def _jobs_renamed(renames: dict[str, str | None]) -> Callable[[str], str]:
    """prometheus.yml with its scrape jobs renamed (None: the job removed)."""
    def change(text: str) -> str:
        doc = yaml.safe_load(text)
        doc["scrape_configs"] = [{**job, "job_name": renames.get(job["job_name"], job["job_name"])}
                                 for job in doc["scrape_configs"] if renames.get(job["job_name"], "") is not None]
        return yaml.safe_dump(doc)
    return change


def test_mon002_and_the_rules_understand_kube_prometheus_stack_job_names(lab: Lab, tmp_path: Path) -> None:
    """kube-prometheus-stack calls etcd's job kube-etcd: targets are known by what they are."""
    conf = lab.paths.etc("mon", "prometheus", "prometheus.yml")
    renamed = _jobs_renamed({"etcd": "kube-etcd"})
    with file_changed(conf, renamed, after=lambda: _reload(lab, 9090)):
        prometheus = Prometheus(f"http://{lab.spec.monitoring_host.address}:9090")

        def scraped() -> bool:   # every one of them: a target not scraped yet is "unknown", not up
            etcd = [t for t in prometheus.targets() if t["labels"].get("job") == "kube-etcd"]
            return bool(etcd) and all(t["health"] == "up" for t in etcd)
        wait.until(scraped, 60, "every kube-etcd target scraped")
        _, results = run_checks(lab.paths.inventory, tmp_path, "MON-002", "MON-006")
        assert {r["outcome"] for r in results.values()} == {"pass"}, results
        etcd = next(m["value"] for m in results["MON-002"]["evidence"] if m["name"] == "etcd targets")
        assert "kube-etcd/" in etcd, etcd


def test_mon002_names_a_component_nobody_scrapes(lab: Lab, tmp_path: Path) -> None:
    conf = lab.paths.etc("mon", "prometheus", "prometheus.yml")
    assert_breaks(lab, tmp_path, "MON-002",
                  lambda: file_changed(conf, _jobs_renamed({"kube-controller-manager": None}),
                                       after=lambda: _reload(lab, 9090)),
                  "no scrape target for kube-controller-manager on cp1, cp2, cp3", within=30)


def test_mon008_names_the_rules_that_can_never_fire_without_kube_state_metrics(lab: Lab, tmp_path: Path) -> None:
    """The kubeadm cluster's first monitoring had no kube-state-metrics: every rule evaluated
    cleanly (MON-006 passed) and KubeNodeNotReady could never fire."""
    conf = lab.paths.etc("mon", "prometheus", "prometheus.yml")
    assert_breaks(lab, tmp_path, "MON-008",
                  lambda: file_changed(conf, _jobs_renamed({"kube-state-metrics": None}),
                                       after=lambda: _reload(lab, 9090)),
                  "KubeNodeNotReady (kube_node_status_condition", within=30)
