"""Clients for the Prometheus and Alertmanager HTTP APIs, and for a test receiver.
Everything here reads, except Alertmanager silences, which the opt-in silence of a
disruptive audit creates and always expires."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import yaml

from hakit import http
from hakit.errors import UnreachableError

RULES_FILE = Path(__file__).resolve().parent / "rules" / "ha-alerts.yaml"   # hakit's HA alert rules


class _Api:
    component = "monitoring"   # what hakit.incidents calls it when it does not answer

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.session = http.session()
        self.timeout = timeout

    def get(self, path: str, **params: Any) -> Any:
        return self._call("GET", path, params=params or None)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            r = self.session.request(method, f"{self.url}{path}", timeout=self.timeout, **kwargs)
        except requests.RequestException as e:
            raise UnreachableError(f"{self.url}: {type(e).__name__}", ("", self.component)) from None
        if r.status_code != 200:
            raise UnreachableError(f"{self.url}{path}: HTTP {r.status_code} {r.text.strip()[:120]}",
                                   ("", self.component))
        return r.json() if r.headers.get("content-type", "").startswith("application/json") else r.text

    def ready(self) -> bool:
        """Both serve /-/ready: 200 once they can do their job."""
        try:
            self.get("/-/ready")
        except UnreachableError:
            return False
        return True


class Prometheus(_Api):
    component = "prometheus"


    def targets(self) -> list[dict[str, Any]]:
        return self.get("/api/v1/targets", state="active")["data"]["activeTargets"]

    def rules(self) -> list[dict[str, Any]]:
        """Every rule of every group, each with its group name added."""
        groups = self.get("/api/v1/rules")["data"]["groups"]
        return [{**rule, "group": g["name"]} for g in groups for rule in g["rules"]]

    def alerts(self) -> list[dict[str, Any]]:
        return self.get("/api/v1/alerts")["data"]["alerts"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.get("/api/v1/query", query=expr)["data"]["result"]

    def readable(self, selector: str) -> bool:
        """Whether a current target exports the selector's metric, from the job it names: its
        metadata lists it (an exporter announces a metric with no series yet, e.g. the
        unreachable taint on a healthy cluster). Not "series exist": a removed job's series
        stay queryable for 5 minutes. Per-target series Prometheus makes itself (up) need only
        a target of the job; a recording rule's output (a name with ":") needs its series."""
        named = re.match(_NAME, selector)
        if named is None:   # {job="x"} alone: any metric, nothing to judge
            return True
        name = named.group(0)
        job = re.search(r'\bjob\s*(=~|=)\s*"((?:[^"\\]|\\.)*)"', selector)
        source = f'{{job{job.group(1)}"{job.group(2)}"}}' if job else ""
        if ":" in name:
            return bool(self.query(f"count({name}{source})"))
        if name in SYNTHETIC:
            jobs = {t["labels"].get("job", "") for t in self.targets()}
            return any(job is None or (re.fullmatch(job.group(2), j) if job.group(1) == "=~" else j == job.group(2))
                       for j in jobs)
        return bool(self.get("/api/v1/targets/metadata", metric=name,
                             **({"match_target": source} if source else {}))["data"])

    def config(self) -> dict[str, Any]:
        """The loaded configuration (global scrape and evaluation intervals among it)."""
        return yaml.safe_load(self.get("/api/v1/status/config")["data"]["yaml"]) or {}


class Alertmanager(_Api):
    component = "alertmanager"


    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        return self.get("/api/v2/alerts", **filters)

    def status(self) -> dict[str, Any]:
        """Includes the loaded config (as YAML text) and cluster peers."""
        return self.get("/api/v2/status")

    def silences(self) -> list[dict[str, Any]]:
        return self.get("/api/v2/silences")

    def silence(self, matchers: dict[str, str], hours: float, comment: str) -> str:
        """A silence for exactly these label values; returns its id."""
        now = time.time()
        body = {"matchers": [{"name": k, "value": v, "isRegex": False, "isEqual": True} for k, v in matchers.items()],
                "startsAt": _iso(now), "endsAt": _iso(now + hours * 3600), "createdBy": "hakit", "comment": comment}
        return self._call("POST", "/api/v2/silences", json=body)["silenceID"]

    def expire(self, silence_id: str) -> None:
        self._call("DELETE", f"/api/v2/silence/{silence_id}")


class Receiver(_Api):
    """A test receiver's log (hakit.lab.pager's GET /notifications): what was paged, and when."""

    def notifications(self) -> list[tuple[float, dict[str, Any]]]:
        """(received at, Alertmanager's webhook payload), oldest first."""
        docs = [json.loads(line) for line in self.get("").splitlines() if line.strip()]
        return [(d["received_at"], d["notification"]) for d in docs]


def duration_seconds(duration: str) -> float:
    """A Prometheus duration as configured (500ms, 5s, 1m30s, 2h) in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    return sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+)(ms|s|m|h|d|w|y)", duration))


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# What an HA component's scrape target looks like, whatever its job is called: its port
# (kubeadm's and the components' defaults), else its job name in the lab's, the etcd and
# kubernetes mixins' and kube-prometheus-stack's conventions.
HA_PORTS = {2379: "etcd", 2381: "etcd", 6443: "kube-apiserver", 10257: "kube-controller-manager",
            10259: "kube-scheduler", 8404: "haproxy", 8405: "haproxy"}
HA_JOBS = {"etcd": "etcd", "kube-etcd": "etcd", "apiserver": "kube-apiserver", "kube-apiserver": "kube-apiserver",
           "kube-controller-manager": "kube-controller-manager", "kube-scheduler": "kube-scheduler",
           "haproxy": "haproxy"}
HA_COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "haproxy")


def ha_component(target: dict[str, Any]) -> str | None:
    """Which HA component a scrape target is, by what it is rather than what it is named."""
    instance = target.get("labels", {}).get("instance", "") or target.get("scrapeUrl", "")
    port = urlsplit(instance if "//" in instance else f"//{instance}").port
    job = target.get("labels", {}).get("job", "")
    return HA_JOBS.get(job) or (HA_PORTS.get(port) if port else None)


def ha_targets(targets: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The HA components' scrape targets, by component."""
    out: dict[str, list[dict[str, Any]]] = {c: [] for c in HA_COMPONENTS}
    for t in targets:
        if (component := ha_component(t)) is not None:
            out[component].append(t)
    return out


def ha_jobs(targets: list[dict[str, Any]]) -> dict[str, str]:
    """Each HA component's job name as this Prometheus calls it (the lab's "etcd" is
    kube-prometheus-stack's "kube-etcd"): an alert about it carries that job label."""
    return {c: ts[0]["labels"]["job"] for c, ts in ha_targets(targets).items()
            if ts and "job" in ts[0].get("labels", {})}


_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
             "scrape_series_added"}   # what Prometheus records for each target itself: no metadata
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right",
             "inf", "nan", "atan2"}


def selectors(expr: str) -> list[str]:
    """The series selectors an expression reads (`up`, `kube_node_status_condition{...}`),
    except those only under absent(), which fire *because* nothing matches. Enough of PromQL
    for rule expressions: strings stay inside their braces, ranges and grouping clauses are
    skipped, a name followed by "(" (or by "by (") is a function."""
    def spans(text: str) -> list[tuple[int, int]]:   # absent( ... ) with balanced parentheses
        out = []
        for m in re.finditer(r"\babsent(_over_time)?\s*\(", text):
            depth, i = 1, m.end()
            while i < len(text) and depth:
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                i += 1
            out.append((m.start(), i))
        return out
    expr = re.sub(r"\[[^\]]*\]", lambda m: " " * len(m.group(0)), expr)   # [5m], [15m:1m]
    absent = spans(expr)
    found: list[str] = []
    for m in re.finditer(rf'({_NAME})?\s*(\{{(?:[^}}"]|"(?:[^"\\]|\\.)*")*\}})|({_NAME})', expr):
        if m.group(3):   # a bare name: a metric unless a function, keyword, or grouping label
            after, before = expr[m.end():].lstrip(), expr[:m.start()].rstrip()
            if m.group(3) in _KEYWORDS or re.match(r"(\(|(by|without)\s*\()", after) or re.search(
                    r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*$", before):
                continue
        if any(a <= m.start() < b for a, b in absent):
            continue
        sel = re.sub(r"\s+", "", m.group(0)) if m.group(2) else m.group(3)
        if sel not in found:
            found.append(sel)
    return found
