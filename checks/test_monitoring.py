"""Monitoring: Prometheus scrapes every HA component, hakit's HA alert rules are
loaded, and alerts reach a real receiver (the Watchdog proves the pipeline)."""

from __future__ import annotations

from urllib.parse import urlsplit

import yaml

from hakit.errors import UnreachableError
from hakit.inventory import Inventory
from hakit.model import Evidence, check
from hakit.prometheus import RULES_FILE, Alertmanager, Prometheus, ha_targets, selectors


def ha_rule_names() -> list[str]:
    doc = yaml.safe_load(RULES_FILE.read_text())
    return [r["alert"] for g in doc["groups"] for r in g["rules"] if "alert" in r]


def monitoring_host(inventory: Inventory, url: str) -> str:
    """The name of the inventory's monitoring host that serves url, else "" (the cluster's, where
    it runs in pods or no monitoring.hosts are listed): names the host an incident is about."""
    address = urlsplit(url).hostname
    return next((h.name for h in inventory.monitoring_hosts if h.address == address), "")


@check("MON-001", "Prometheus is ready", property="monitoring",
       remediation="""`systemctl status prometheus` and its log; /-/ready answers 503 while the TSDB replays.""")
def test_prometheus_ready(prometheus: Prometheus, inventory: Inventory, evidence: Evidence) -> None:
    """No Prometheus, no alert about anything else failing."""
    ok = evidence.record("GET /-/ready", "ready" if prometheus.ready() else "not ready", expected="ready")
    if ok != "ready":
        evidence.about(monitoring_host(inventory, prometheus.url), "prometheus")
    assert ok == "ready", f"Prometheus at {prometheus.url} is not ready"


@check("MON-002", "Every HA component is scraped on every control-plane host, and up", property="monitoring",
       remediation="""Open Prometheus' /targets page: the error names the cause (TLS, 403 from RBAC on
/metrics, connection refused). etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
haproxy each need a target on every control-plane host, whatever their jobs are called (the lab's
names and kube-prometheus-stack's are both understood; a target is also known by its port).""")
def test_ha_targets_up(prometheus: Prometheus, inventory: Inventory, evidence: Evidence) -> None:
    """A component that is not scraped cannot raise an alert."""
    found = ha_targets(prometheus.targets())
    addresses = {h.address: h.name for h in inventory.control_plane}
    missing, down = [], []
    for component, targets in found.items():
        hosts = {addresses.get(urlsplit(f"//{t['labels'].get('instance', '')}").hostname or "") for t in targets}
        absent = [n for a, n in addresses.items() if n not in hosts]
        missing += [f"{component} on {', '.join(absent)}"] if absent else []
        for t in targets:
            if t["health"] != "up":
                down.append(f"{component} {t['labels'].get('instance')} (job {t['labels'].get('job')}: "
                            f"{t.get('lastError') or t['health']})")
                host = urlsplit(f"//{t['labels'].get('instance', '')}").hostname or ""
                evidence.about(addresses.get(host, host), component)
        scraped = sorted(f"{t['labels'].get('job')}/{t['labels'].get('instance')}" for t in targets)
        evidence.record(f"{component} targets", ", ".join(scraped) or "none")
    evidence.record("not scraped", missing or "none", expected="none")
    evidence.record("down", down or "none", expected="none")
    assert not missing, f"no scrape target for {'; '.join(missing)}"
    assert not down, f"targets down: {'; '.join(down)}"


@check("MON-003", "hakit's HA alert rules are loaded", property="monitoring",
       remediation="""Load hakit's rules file into Prometheus (rule_files: in prometheus.yml), from
hakit/rules/ha-alerts.yaml in the hakit package, then reload Prometheus.""")
def test_ha_rules_loaded(prometheus: Prometheus, evidence: Evidence) -> None:
    """An HA failure nobody is alerted about is found by users first."""
    loaded = {r["name"] for r in prometheus.rules() if r.get("type") == "alerting"}
    missing = [n for n in ha_rule_names() if n not in loaded]
    evidence.record("HA rules loaded", f"{len(ha_rule_names()) - len(missing)} of {len(ha_rule_names())}",
                    expected="all")
    assert not missing, f"HA alert rules not loaded: {', '.join(missing)} (load {RULES_FILE.name})"


@check("MON-004", "The Watchdog alert reaches Alertmanager", property="monitoring",
       remediation="""Check Prometheus' alerting config (alertmanagers:) and /api/v1/alertmanagers; the
Watchdog rule (vector(1)) must be loaded and Alertmanager reachable from Prometheus.""")
def test_watchdog_in_alertmanager(alertmanager: Alertmanager, inventory: Inventory, evidence: Evidence) -> None:
    """The always-firing alert proves Prometheus → Alertmanager works right now."""
    try:
        alerts = alertmanager.alerts(filter="alertname=Watchdog")
    except UnreachableError as e:
        evidence.about(monitoring_host(inventory, alertmanager.url), "alertmanager")
        raise AssertionError(f"Alertmanager does not answer, so no alert reaches anyone: {e}") from None
    found = [a for a in alerts if a.get("status", {}).get("state") != "unprocessed"]
    evidence.record("Watchdog in Alertmanager", "yes" if found else "no", expected="yes")
    assert found, f"Alertmanager at {alertmanager.url} has no Watchdog alert: Prometheus does not deliver alerts"


@check("MON-005", "Critical alerts route to a real receiver", property="monitoring",
       remediation="""In alertmanager.yml, route severity="critical" to a receiver with at least one
integration (webhook, PagerDuty, email …); a receiver with none drops the alert silently.""")
def test_critical_routed(alertmanager: Alertmanager, evidence: Evidence) -> None:
    """An alert routed to a receiver with no integration pages nobody."""
    config = yaml.safe_load(alertmanager.status()["config"]["original"])
    receiver = route_for(config["route"], {"severity": "critical", "alertname": "etcdMembersDown"})
    integrations = [k for r in config.get("receivers", []) if r["name"] == receiver
                    for k, v in r.items() if k.endswith("_configs") and v]
    evidence.record("receiver for severity=critical", receiver)
    evidence.record("integrations", integrations or "none", expected="≥ 1")
    assert integrations, f"critical alerts route to receiver {receiver!r}, which has no integration: nobody is paged"


def route_for(route: dict, labels: dict[str, str]) -> str:
    """The receiver Alertmanager picks for labels (first matching child, depth first)."""
    for child in route.get("routes", []) or []:
        if _matches(child, labels):
            return route_for({**child, "receiver": child.get("receiver", route["receiver"])}, labels)
    return route["receiver"]


def _matches(route: dict, labels: dict[str, str]) -> bool:
    import re
    for k, v in (route.get("match") or {}).items():
        if labels.get(k) != v:
            return False
    for k, v in (route.get("match_re") or {}).items():
        if not re.fullmatch(v, labels.get(k, "")):
            return False
    for m in route.get("matchers") or []:
        mm = re.fullmatch(r'\s*(\w+)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*', m)
        if not mm:
            return False
        k, op, v = mm.groups()
        got = labels.get(k, "")
        ok = {"=": got == v, "!=": got != v, "=~": bool(re.fullmatch(v, got)), "!~": not re.fullmatch(v, got)}[op]
        if not ok:
            return False
    return True


@check("MON-006", "Every alert rule evaluates without error", property="monitoring",
       remediation="""Open Prometheus' /rules page: a rule in state "err" names its evaluation error (often
many-to-many matching after a label change); fix the expression and check it with promtool.""")
def test_rules_evaluate(prometheus: Prometheus, evidence: Evidence) -> None:
    """A rule that errors on every evaluation never fires, whatever breaks."""
    rules = prometheus.rules()
    broken = [f"{r['name']} ({r.get('lastError', '').strip()[:120]})" for r in rules if r.get("health") == "err"]
    evidence.record("rules evaluated", len(rules))
    evidence.record("rules in error", broken or "none", expected="none")
    assert not broken, f"alert rules failing to evaluate: {'; '.join(broken)}"


@check("MON-007", "Alertmanager runs clustered and sees all its peers", property="monitoring",
       remediation="""Run at least two Alertmanagers with --cluster.listen-address and --cluster.peer pointing
at each other (TCP and UDP 9094 open between them), and list every one under Prometheus'
alerting.alertmanagers; a peer missing from /api/v2/status is down or cut off, and while it is,
silences and notification deduplication are not shared.""")
def test_alertmanager_peers(alertmanager: Alertmanager, inventory: Inventory, evidence: Evidence) -> None:
    """A single Alertmanager is a single point of failure between every alert and the pager."""
    cluster = alertmanager.status().get("cluster", {})
    peers = sorted(p.get("address", "?") for p in cluster.get("peers") or [])
    expected = inventory.alertmanager_peers or 2
    evidence.record("cluster status", cluster.get("status", "unknown"), "ready")
    evidence.record("peers", peers or "none", f"{expected} (monitoring.alertmanager_peers)", len(peers) >= expected)
    assert cluster.get("status") != "disabled", (
        "Alertmanager runs unclustered (no --cluster.listen-address): one instance, one point of failure")
    if len(peers) < expected:
        seen = {p.rsplit(":", 1)[0] for p in peers}
        missing = [h.name for h in inventory.monitoring_hosts if h.address not in seen]   # each runs an Alertmanager
        for name in missing:
            evidence.about(name, "alertmanager")
        who = f"{', '.join(missing)} down or cut off" if missing else "a peer is down or cut off"
        raise AssertionError(f"Alertmanager sees {len(peers)} of {expected} cluster peers "
                             f"({', '.join(peers) or 'none'}): {who}")
    assert cluster.get("status") == "ready", f"the Alertmanager cluster is {cluster.get('status')}, not ready"


@check("MON-008", "Every HA alert rule reads metrics some target exports", property="monitoring",
       remediation="""A rule whose metric no target exports evaluates cleanly to nothing forever: it can never
fire. Scrape what it reads under the job it names: kube-state-metrics (job "kube-state-metrics")
for the node and Deployment rules (provision-monitoring installs it), each HA component for its
own. If the metric was renamed in your version, adjust the rule's expression.""")
def test_rules_can_fire(prometheus: Prometheus, evidence: Evidence) -> None:
    """A rule that reads nothing is green on the rules page and silent in every outage: the
    kubeadm cluster without kube-state-metrics never pages for a NotReady node."""
    ours = set(ha_rule_names())
    rules = [r for r in prometheus.rules() if r.get("type") == "alerting" and r["name"] in ours]
    blind = {r["name"]: unread for r in rules if (unread := [s for s in selectors(r["query"])
                                                             if not prometheus.readable(s)])}
    evidence.record("HA rules read", len(rules))
    evidence.record("rules that can never fire", [f"{n}: no target exports {', '.join(s)}" for n, s in blind.items()]
                    or "none", expected="none")
    assert not blind, "alert rules that can never fire, their metric exported by no target: " + "; ".join(
        f"{n} ({', '.join(s)})" for n, s in blind.items())
