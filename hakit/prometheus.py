"""Read-only clients for Prometheus and Alertmanager HTTP APIs."""

from __future__ import annotations

from typing import Any

import requests

from hakit import http
from hakit.errors import UnreachableError


class _Api:
    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.session = http.session()
        self.timeout = timeout

    def get(self, path: str, **params: Any) -> Any:
        try:
            r = self.session.get(f"{self.url}{path}", params=params or None, timeout=self.timeout)
        except requests.RequestException as e:
            raise UnreachableError(f"{self.url}: {type(e).__name__}") from None
        if r.status_code != 200:
            raise UnreachableError(f"{self.url}{path}: HTTP {r.status_code} {r.text.strip()[:120]}")
        return r.json() if r.headers.get("content-type", "").startswith("application/json") else r.text

    def ready(self) -> bool:
        """Both serve /-/ready: 200 once they can do their job."""
        try:
            self.get("/-/ready")
        except UnreachableError:
            return False
        return True


class Prometheus(_Api):

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


class Alertmanager(_Api):

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        return self.get("/api/v2/alerts", **filters)

    def status(self) -> dict[str, Any]:
        """Includes the loaded config (as YAML text) and cluster peers."""
        return self.get("/api/v2/status")
