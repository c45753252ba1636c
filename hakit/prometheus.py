"""Clients for the Prometheus and Alertmanager HTTP APIs, and for a test receiver.
Everything here reads, except Alertmanager silences, which the opt-in silence of a
disruptive audit creates and always expires."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from typing import Any
from pathlib import Path
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
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
    return {c: ts[0]["labels"]["job"] for c, ts in ha_targets(targets).items() if ts and "job" in ts[0].get("labels", {})}
