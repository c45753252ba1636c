"""Audit reports: one JSON results document (schema below) rendered to a
self-contained HTML page. `hakit report` re-renders HTML from the JSON.

JSON schema, version 1 (`schema: "hakit.results/v1"`):
  kit_version, cluster, inventory, started, finished (unix seconds), duration,
  verdicts: {property: pass|degraded|fail|unverified} (unverified: a check was skipped or
            could not run; a skip of a check in accepted_skips does not count),
  accepted_skips: [check id], leftover_faults: [what an earlier run left in effect],
  summary: {pass, fail, warn, skip, error: counts},
  cluster_facts: {kubernetes_version, nodes, control_plane_nodes} (when the API answered),
  kubernetes_api_requests: every Kubernetes API call the run sent (counted by its clients' HTTP pools),
  results: [{check: {id, title, property, severity, remediation, runbook},
             outcome, message, duration, nodeid,
             evidence: [{name, value, expected, ok}],
             timeline: [{at (seconds after the fault), what, ok}] (disruptive checks),
             deadline: [seconds, "slo name"] or null}],
  incidents: [{cause, components, repair (the command), explained, checks, consequences}]
             (hakit.incidents: failing checks grouped by cause, leftover faults first),
  remediation (with `hakit audit --remediate`): [{runbook, title, for_checks, status
             (succeeded|failed|aborted|not run), error, run, params, journal, started, finished,
             steps: [{id, text, status, output, error}], checks: {id: {outcome, message}}}]
"""

from __future__ import annotations

import json
import os
import socket
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from hakit import __version__
from hakit.errors import ConfigError
from hakit.model import PROPERTIES, Outcome, Result, verdicts

SCHEMA = "hakit.results/v1"
_ENV = jinja2.Environment(loader=jinja2.PackageLoader("hakit.report", "templates"),
                          autoescape=True, undefined=jinja2.StrictUndefined)


def _fmt(value: Any) -> str:
    """Measured values as a person writes them: no Python reprs in a report."""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) or "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value) or "none"
    return str(value)


_ENV.filters["fmt"] = _fmt


def results_document(results: list[Result], cluster: str, inventory: Path, started: float, finished: float,
                     accepted_skips: list[str] | None = None) -> dict[str, Any]:
    """The results, serialised: where outcomes and verdicts become strings."""
    return {
        "schema": SCHEMA, "kit_version": __version__, "cluster": cluster, "inventory": str(inventory),
        "runner": socket.gethostname(), "started": started, "finished": finished,
        "duration": round(finished - started, 3),
        "verdicts": {k: v.value for k, v in verdicts(results, accepted_skips or []).items()},
        "accepted_skips": accepted_skips or [],
        "summary": {o.value: sum(r.outcome is o for r in results) for o in Outcome},
        "results": [r.to_dict() for r in results],
    }


def _atomic_write(path: Path, text: str) -> None:
    """Never leave a half-written report: write beside it, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(doc: dict[str, Any], path: Path) -> None:
    _atomic_write(path, json.dumps(doc, indent=1, default=str))


def read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"results file {path}: no such file") from None
    except (OSError, ValueError) as e:
        raise ConfigError(f"results file {path}: not JSON ({str(e).splitlines()[0]})") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ConfigError(f"results file {path}: not a {SCHEMA} document")
    return doc


_ORDER = {"fail": 0, "error": 1, "warn": 2, "skip": 3, "pass": 4}


def _runbooks() -> dict[str, str]:
    """Shipped runbooks, each with its required parameters as a hint: ' host=… component=…'."""
    from hakit.runbook import load_all
    return {name: "".join(f" {p.name}=…" for p in rb.params if p.default is None) for name, rb in load_all().items()}


def write_html(doc: dict[str, Any], path: Path) -> None:
    try:
        html = _render_audit(doc)
    except (jinja2.UndefinedError, AttributeError, IndexError, KeyError, TypeError, ValueError) as e:   # hand-edited
        raise ConfigError(f"results document lacks a field the report needs ({type(e).__name__}: {e})") from None
    _atomic_write(path, html)


def _render_audit(doc: dict[str, Any]) -> str:
    results = sorted(doc["results"], key=lambda r: (_ORDER[r["outcome"]], r["check"]["id"]))
    by_prop = {p: [r for r in results if r["check"]["property"] == p] for p in doc["verdicts"]}
    vs = set(doc["verdicts"].values())
    overall = "fail" if "fail" in vs else "unverified" if "unverified" in vs or not vs else \
        "degraded" if "degraded" in vs else "pass"
    return _ENV.get_template("audit.html.j2").render(
        doc=doc, overall=overall, results=results, by_prop=by_prop, properties=PROPERTIES, runbooks=_runbooks(),
        remedied={c: run for run in doc.get("remediation", []) for c in run["for_checks"]},
        counts=Counter(r["outcome"] for r in results),
        when=datetime.fromtimestamp(doc["started"], UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))
