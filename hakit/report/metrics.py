"""Audit results as Prometheus metrics, so the Prometheus a team already has can
alert when an audit fails or stops running (hakit/rules/ha-alerts.yaml, group
hakit-audit). Written as a node_exporter textfile, or pushed to a Pushgateway.

    hakit_audit_success{cluster}                   1 when every property was verified and none fails
    hakit_audit_timestamp_seconds{cluster}         when the audit finished
    hakit_audit_duration_seconds{cluster}
    hakit_property_verdict{cluster,property}       0 pass, 1 degraded, 2 fail, 3 unverified
    hakit_check_status{cluster,check,property,severity}   0 pass, 1 warn, 2 fail, 3 error, -1 skip
    hakit_measured_seconds{cluster,check,measurement}     each measured duration (failovers)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hakit.errors import UnreachableError
from hakit.http import session
from hakit.report import _atomic_write

VERDICT = {"pass": 0, "degraded": 1, "fail": 2, "unverified": 3, "unknown": 3}   # unknown: older files
STATUS = {"pass": 0, "warn": 1, "fail": 2, "error": 3, "skip": -1}
HELP = {
    "hakit_audit_success": "1 when every HA property was verified (no skip, no error) and none fails, "
                           "and no fault is left",
    "hakit_audit_timestamp_seconds": "Unix time the audit finished",
    "hakit_audit_duration_seconds": "How long the audit took",
    "hakit_property_verdict": "Per HA property: 0 pass, 1 degraded, 2 fail, 3 unverified",
    "hakit_check_status": "Per check: 0 pass, 1 warn, 2 fail, 3 error, -1 skipped",
    "hakit_measured_seconds": "Durations the checks measured (failover, election, delivery)",
}


def _labels(**labels: str) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return "{" + ",".join(f'{k}="{esc(str(v))}"' for k, v in labels.items()) + "}"


def exposition(doc: dict[str, Any]) -> str:
    """The Prometheus text format of one results document."""
    c = doc["cluster"]
    samples: dict[str, list[str]] = {name: [] for name in HELP}
    ok = not set(doc["verdicts"].values()) & {"fail", "unverified", "unknown"} and not doc.get("leftover_faults")
    samples["hakit_audit_success"].append(f"{_labels(cluster=c)} {1 if ok else 0}")
    samples["hakit_audit_timestamp_seconds"].append(f"{_labels(cluster=c)} {doc['finished']:.3f}")
    samples["hakit_audit_duration_seconds"].append(f"{_labels(cluster=c)} {doc['duration']:.3f}")
    for prop, verdict in doc["verdicts"].items():
        samples["hakit_property_verdict"].append(f"{_labels(cluster=c, property=prop)} {VERDICT[verdict]}")
    seen = set()
    for r in doc["results"]:
        chk = r["check"]
        check = chk["id"] + (f"[{r['nodeid'].split('[', 1)[1]}" if "[" in r["nodeid"] else "")
        if check not in seen:
            seen.add(check)
            samples["hakit_check_status"].append(
                f"{_labels(cluster=c, check=check, property=chk['property'], severity=chk['severity'])} "
                f"{STATUS[r['outcome']]}")
        for m in r["evidence"]:
            if m.get("seconds") is not None:
                samples["hakit_measured_seconds"].append(
                    f"{_labels(cluster=c, check=check, measurement=m['name'])} {m['seconds']}")
    lines = []
    for name, rows in samples.items():
        if rows:
            lines += [f"# HELP {name} {HELP[name]}", f"# TYPE {name} gauge"] + [name + row for row in rows]
    return "\n".join(lines) + "\n"


def write_textfile(doc: dict[str, Any], path: Path) -> None:
    """For node_exporter's textfile collector: written whole, then renamed into place."""
    _atomic_write(path, exposition(doc))


def push(doc: dict[str, Any], url: str) -> None:
    """PUT to a Pushgateway, grouped by job=hakit and the cluster: each audit replaces the last."""
    target = f"{url.rstrip('/')}/metrics/job/hakit/cluster/{doc['cluster']}"
    try:
        r = session().put(target, data=exposition(doc).encode(), timeout=10)
    except OSError as e:
        raise UnreachableError(f"pushgateway {url}: {type(e).__name__}") from None
    if r.status_code >= 300:
        raise UnreachableError(f"pushgateway {target}: HTTP {r.status_code} {r.text.strip()[:120]}")
