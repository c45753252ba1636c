"""Probes: side-effect-free questions about the cluster, one implementation each."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import requests

from hakit import http


@dataclass(frozen=True)
class Health:
    host: str
    component: str
    ok: bool
    detail: str = ""


READYZ = "kube-apiserver /readyz"   # the Health component name of an apiserver's /readyz


def readyz(url: str, ca: Path | str | None = None, timeout: float = 3.0,
           session: requests.Session | None = None) -> str:
    """"ok" when GET url/readyz answers 200, else why not in a few words. Without a CA the
    certificate is not verified: a liveness probe, as haproxy's own check is."""
    s = session or http.session(ca)
    try:
        r = s.get(f"{url}/readyz", timeout=timeout, verify=str(ca) if ca else False)
    except requests.RequestException as e:
        return type(e).__name__
    return "ok" if r.status_code == 200 else f"HTTP {r.status_code}"


def answers(url: str, timeout: float = 3.0) -> bool:
    """Whether url answers 200 (no certificate check: is it up, not is it trusted)."""
    try:
        return http.session().get(url, verify=False, timeout=timeout).status_code == 200
    except requests.RequestException:
        return False
