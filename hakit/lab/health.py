"""Real health of a lab component: its own health endpoint, not just a live pid."""

from __future__ import annotations

import socket
import threading

import requests

from hakit import http
from hakit.lab.components import Component

_SESSIONS: dict[tuple[str, str | bool], requests.Session] = {}
_LOCK = threading.Lock()


def _session(url: str, verify: str | bool) -> requests.Session:
    """One kept-alive session per endpoint: the tests poll the lab's health every second, and
    a TLS handshake per probe was most of the CPU a poll cost (a dropped connection, as after
    a restart, is replaced by urllib3 before reuse)."""
    with _LOCK:
        if (url, verify) not in _SESSIONS:
            s = http.session()
            s.verify = verify
            _SESSIONS[url, verify] = s
        return _SESSIONS[url, verify]


def probe(comp: Component, ca_file: str, timeout: float = 2.0) -> tuple[bool, str]:
    """(healthy, short detail). kcm and scheduler serve self-signed certificates,
    as on kubeadm clusters, so only the apiserver's is verified against the CA."""
    kind, *target = comp.health
    if kind == "process":
        return True, "running"
    if kind == "tcp":
        try:
            with socket.create_connection((target[0], int(target[1])), timeout=timeout):
                return True, f"listening on {target[0]}:{target[1]}"
        except OSError as e:
            return False, f"{target[0]}:{target[1]}: {e.strerror or e}"
    url = target[0]
    s = _session(url, ca_file if comp.name == "kube-apiserver" else False)
    try:
        r = s.get(url, timeout=timeout)
    except requests.RequestException as e:
        return False, f"{url}: {type(e).__name__}"
    if r.status_code != 200:
        return False, f"{url}: HTTP {r.status_code}"
    if comp.name == "etcd" and '"health":"true"' not in r.text.replace(" ", ""):
        return False, f"{url}: {r.text.strip()[:80]}"
    return True, url.split("//", 1)[1]
