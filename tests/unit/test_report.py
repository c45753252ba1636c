"""Reports: history and regressions, metrics exposition."""

from __future__ import annotations


def _doc(started: float, etcd: str, failover: float, outcome: str = "pass") -> dict:
    check = {"id": "VIP-D01", "title": "VIP moves", "property": "api-endpoint", "severity": "critical",
             "remediation": "r", "runbook": None, "disruptive": "vip-failover"}
    return {"schema": "hakit.results/v1", "cluster": "prod", "started": started, "finished": started + 60,
            "duration": 60.0, "verdicts": {"api-endpoint": "pass" if outcome == "pass" else "fail", "etcd": etcd},
            "summary": {"pass": 1, "fail": int(outcome == "fail"), "warn": 0, "skip": 0, "error": 0},
            "results": [{"check": check, "outcome": outcome, "message": "", "nodeid": "checks/x.py::t",
                         "duration": 1.0, "deadline": [10.0, "slo.vip_failover_seconds"], "timeline": [],
                         "evidence": [{"name": "VIP failover", "value": f"{failover} s", "expected": "≤ 10 s",
                                       "ok": failover <= 10, "seconds": failover}]}]}


def test_history_flags_what_regressed_and_keeps_each_durations_series() -> None:
    from hakit.report.history import regressions, series
    docs = [_doc(1000, "pass", 2.0), _doc(2000, "pass", 3.0), _doc(3000, "fail", 12.5, "fail")]
    found = regressions(docs)
    assert "etcd quorum and health: pass → fail" in found
    assert any(r.startswith("VIP-D01 VIP failover: 3.0 s → 12.5 s, past ≤ 10 s") for r in found), found
    [s] = series(docs)
    assert s.key == "VIP-D01 · VIP failover" and s.points == [(0, 2.0), (1, 3.0), (2, 12.5)] and s.slo == 10.0
    assert regressions(docs[:2]) == []


def test_metrics_exposition_of_an_audit() -> None:
    from hakit.report.metrics import exposition
    text = exposition(_doc(1000, "degraded", 3.5, "fail"))
    assert 'hakit_audit_success{cluster="prod"} 0' in text
    assert 'hakit_property_verdict{cluster="prod",property="etcd"} 1' in text
    assert 'hakit_check_status{cluster="prod",check="VIP-D01",property="api-endpoint",severity="critical"} 2' in text
    assert 'hakit_measured_seconds{cluster="prod",check="VIP-D01",measurement="VIP failover"} 3.5' in text
    assert "# TYPE hakit_audit_timestamp_seconds gauge" in text
