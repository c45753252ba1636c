"""Audit history: every past audit's results.json under a directory, drawn as one
page: each HA property's verdict over time, each measured duration (failover
seconds) over time against its SLO, and at the top what regressed since the audit
before the last.

    hakit report history reports/        # writes reports/history.html
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hakit.errors import ConfigError
from hakit.model import PROPERTIES
from hakit.report import _ENV, SCHEMA, _atomic_write

W, H, PAD = 520, 120, 28   # a duration chart's size and margin, in px


@dataclass(frozen=True)
class Series:
    """One measured duration across audits: a check's key measurement."""

    key: str                               # "VIP-D01 · VIP failover"
    points: list[tuple[int, float]]        # (audit index, seconds)
    slo: float | None

    def svg_points(self, audits: int) -> str:
        return " ".join(f"{self.x(i, audits):.1f},{self.y(v):.1f}" for i, v in self.points)

    def x(self, i: int, audits: int) -> float:
        return PAD + (W - 2 * PAD) * (i / max(audits - 1, 1))

    def y(self, v: float) -> float:
        return H - PAD + (2 * PAD - H) * (v / self.top())

    def top(self) -> float:
        """The chart's highest value: room above the largest point and the SLO."""
        return max([s for _, s in self.points] + [self.slo or 0]) * 1.15 or 1.0


def collect(directory: Path) -> list[dict[str, Any]]:
    """Every results document under directory, oldest first; unreadable ones are skipped."""
    docs = []
    for path in directory.rglob("results.json"):
        if path.parent.is_symlink():      # reports/latest points at one of the others
            continue
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and doc.get("schema") == SCHEMA:
            docs.append(doc)
    if not docs:
        raise ConfigError(f"no audit results (*/results.json, schema {SCHEMA}) under {directory}")
    return sorted(docs, key=lambda d: d["started"])


def series(docs: list[dict[str, Any]]) -> list[Series]:
    found: dict[str, Series] = {}
    for i, doc in enumerate(docs):
        for r in doc["results"]:
            for m in r["evidence"]:
                if m.get("seconds") is None:
                    continue
                param = f" [{r['nodeid'].split('[')[1]}" if "[" in r["nodeid"] else ""
                key = f"{r['check']['id']} · {m['name']}{param}"
                slo = r["deadline"][0] if r.get("deadline") else None
                prev = found.get(key, Series(key, [], slo))
                found[key] = Series(key, prev.points + [(i, m["seconds"])], slo)
    return sorted(found.values(), key=lambda s: s.key)


def regressions(docs: list[dict[str, Any]]) -> list[str]:
    """What got worse from the audit before the last to the last."""
    if len(docs) < 2:
        return []
    before, now = docs[-2], docs[-1]
    out = [f"{PROPERTIES.get(p, p)}: {before['verdicts'].get(p)} → {v}" for p, v in now["verdicts"].items()
           if v in ("fail", "degraded", "unverified") and before["verdicts"].get(p) == "pass"
           or v == "fail" and before["verdicts"].get(p) == "degraded"]
    was = {(r["check"]["id"], r["nodeid"]): r for r in before["results"]}
    for r in now["results"]:
        old = was.get((r["check"]["id"], r["nodeid"]))
        if old and old["outcome"] == "pass" and r["outcome"] in ("fail", "warn"):
            out.append(f"{r['check']['id']} {r['check']['title']}: passed, now {r['outcome']}: {r['message']}")
        for m in r["evidence"]:
            prev = next((o for o in (old or {}).get("evidence", []) if o["name"] == m["name"]), None)
            if m.get("seconds") is not None and m.get("ok") is False and prev and prev.get("ok") is not False:
                out.append(f"{r['check']['id']} {m['name']}: {prev['value']} → {m['value']}, past {m['expected']}")
    return out


def runbook_runs(directory: Path) -> list[dict[str, Any]]:
    """Every runbook run journaled in directory (hand-made ones too): when, which runbook with
    which parameters, how it ended. A journal that cannot be read is left out."""
    out = []
    for path in sorted(directory.glob("*.jsonl")):
        try:
            records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            start = records[0]
            end = next((r for r in reversed(records) if r.get("event") == "end"), {"status": "interrupted"})
            out.append({"at": float(start["at"]), "runbook": str(start["runbook"]), "run": path.stem,
                        "params": " ".join(f"{k}={v}" for k, v in (start.get("params") or {}).items()),
                        "status": str(end.get("status")), "error": str(end.get("error", ""))[:200]})
        except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError):
            continue
    return out


def story(docs: list[dict[str, Any]], runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Audits and runbook runs in one timeline, newest first: audit red → runbook run → audit green."""
    events = [{"at": d["started"], "kind": "audit", "doc": d} for d in docs] + \
             [{"at": r["at"], "kind": "runbook", "run": r} for r in runs if not docs or r["at"] >= docs[0]["started"]]
    for e in events:
        e["when"] = datetime.fromtimestamp(e["at"], UTC).strftime("%Y-%m-%d %H:%M")
    return sorted(events, key=lambda e: e["at"], reverse=True)


def write_history(docs: list[dict[str, Any]], path: Path, runs: list[dict[str, Any]] | None = None) -> None:
    when = [datetime.fromtimestamp(d["started"], UTC).strftime("%Y-%m-%d %H:%M") for d in docs]
    props = [p for p in PROPERTIES if any(p in d["verdicts"] for d in docs)]
    html = _ENV.get_template("history.html.j2").render(
        docs=docs, when=when, props=props, properties=PROPERTIES, series=series(docs),
        regressions=regressions(docs), story=story(docs, runs or []), W=W, H=H, PAD=PAD)
    _atomic_write(path, html)
