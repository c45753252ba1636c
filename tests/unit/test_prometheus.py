"""Prometheus and Alertmanager: routing, durations, the HA targets and alert selectors."""

from __future__ import annotations

import pytest

from hakit.prometheus import duration_seconds


def test_alertmanager_routing_picks_first_matching_child() -> None:
    from checks.test_monitoring import route_for
    route = {"receiver": "default", "routes": [
        {"receiver": "team", "matchers": ['team="x"']},
        {"receiver": "null", "matchers": ['severity=~"crit.*"']},
        {"receiver": "pager", "match": {"severity": "critical"}}]}
    assert route_for(route, {"severity": "critical"}) == "null"
    assert route_for(route, {"severity": "warning"}) == "default"


@pytest.mark.parametrize("text, seconds", [("5s", 5), ("1m", 60), ("1m30s", 90), ("2h", 7200), ("500ms", 0.5)])
def test_prometheus_durations(text: str, seconds: float) -> None:
    assert duration_seconds(text) == seconds


def test_ha_targets_are_known_by_what_they_are_and_their_alerts_by_the_job_they_carry() -> None:
    """MON-D01 matched etcdMembersDown on job="etcd"; under kube-prometheus-stack's names the
    alert carries job="kube-etcd" and was never seen (the kubeadm lab's MON-D01 found it)."""
    from hakit.prometheus import ha_jobs, ha_targets
    kps = [{"labels": {"job": "kube-etcd", "instance": "10.0.3.11:2381"}},
           {"labels": {"job": "apiserver", "instance": "10.0.3.11:6443"}},
           {"labels": {"job": "custom", "instance": "10.0.3.11:10259"}},      # known by its port
           {"labels": {"job": "node-exporter", "instance": "10.0.3.11:9100"}}]
    assert {c: len(t) for c, t in ha_targets(kps).items()} == {
        "etcd": 1, "kube-apiserver": 1, "kube-controller-manager": 0, "kube-scheduler": 1, "haproxy": 0}
    assert ha_jobs(kps) == {"etcd": "kube-etcd", "kube-apiserver": "apiserver", "kube-scheduler": "custom"}


def test_a_resolved_alert_inside_a_firing_group_notification_counts_as_resolved() -> None:
    """Alertmanager's payload as captured from the lab's pager: w1 resolved while cp3 of the same
    group still fires, so the notification as a whole says "firing"."""
    from hakit.alerting import Follow

    def alert(node: str, status: str) -> dict:
        return {"status": status, "labels": {"alertname": "KubeNodeNotReady", "node": node}}

    class Pager:
        def notifications(self) -> list:
            return [(now, {"status": "firing", "alerts": [alert("w1", "firing")]}),
                    (now + 9, {"status": "firing", "alerts": [alert("cp3", "firing"), alert("w1", "resolved")]})]

    follow = Follow(None, None, Pager(), "KubeNodeNotReady", {"node": "w1"})  # type: ignore[arg-type]
    now = follow.since
    assert follow.paged() == {"firing", "resolved"}
    follow.trail.labels = {"node": "w2"}
    assert follow.paged() == set()


def test_selectors_are_what_a_rule_reads_outside_absent() -> None:
    from hakit.prometheus import selectors
    assert selectors('100 * (count by (job) (up == 0) / count by (job) (up)) > 10') == ["up"]
    assert selectors('increase((max without (instance) (etcd_x_total{job=~".*etcd.*"}) or 0 * '
                     'absent(etcd_x_total{job=~".*etcd.*"}))[15m:1m]) >= 4') == ['etcd_x_total{job=~".*etcd.*"}']
    assert selectors('absent(up{job="apiserver"} == 1)') == []   # fires because nothing matches
    assert selectors('sum(rate(a_total{l="}"}[5m])) by (le) > on(instance) group_left b') == ['a_total{l="}"}', "b"]
