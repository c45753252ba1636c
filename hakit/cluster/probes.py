"""Probes: side-effect-free questions about the cluster, one implementation each."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path

import requests

from hakit import http, wait
from hakit.incidents import EXITS_AT_ONCE


@dataclass(frozen=True)
class Health:
    host: str
    component: str
    ok: bool
    detail: str = ""

    def __str__(self) -> str:
        """As a refusal or a wait names it: "cp3/kube-apiserver /readyz (HTTP 500)"."""
        return f"{self.host}/{self.component}" + (f" ({self.detail})" if self.detail else "")


READYZ = "kube-apiserver /readyz"   # the Health component name of an apiserver's /readyz


def readyz(url: str, ca: Path | str | None = None, timeout: float = 3.0,
           session: requests.Session | None = None) -> str:
    """"ok" when GET url/readyz answers 200, else why not in a few words. Without a CA the
    certificate is not verified: a liveness probe, as haproxy's own check is."""
    return _get_ok(f"{url}/readyz", ca, timeout, session)


def version(url: str, ca: Path | str | None = None, timeout: float = 3.0) -> str:
    """The gitVersion an apiserver answers GET url/version with (readable without credentials,
    as kubeadm's RBAC allows), or '' when it does not answer it."""
    try:
        r = http.session(ca).get(f"{url}/version", timeout=timeout, verify=str(ca) if ca else False)
        return str(r.json().get("gitVersion", "")) if r.status_code == 200 else ""
    except (requests.RequestException, ValueError, AttributeError):
        return ""


def wait_ready(url: str, timeout: float, what: str = "") -> None:
    """Until url/readyz answers 200 (polled every second), else WaitTimeout with its last answer."""
    wait.until(lambda: readyz(url) == "ok", timeout, what or f"{url}/readyz", interval=1.0, why=lambda: readyz(url))


def accepts(address: str, port: int, timeout: float = 2.0) -> str:
    """"ok" when a TCP connection to address:port is accepted (a load balancer with no
    backend yet still accepts), else the reason."""
    try:
        socket.create_connection((address, port), timeout=timeout).close()
        return "ok"
    except OSError as e:
        return e.strerror or type(e).__name__


def healthz(url: str, timeout: float = 3.0) -> str:
    """"ok" when GET url/healthz answers 200 (kube-controller-manager, kube-scheduler)."""
    return _get_ok(f"{url}/healthz", None, timeout, None)


def _get_ok(url: str, ca: Path | str | None, timeout: float, session: requests.Session | None) -> str:
    s = session or http.session(ca)
    try:
        r = s.get(url, timeout=timeout, verify=str(ca) if ca else False)
    except requests.RequestException as e:
        return type(e).__name__
    return "ok" if r.status_code == 200 else f"HTTP {r.status_code}"


# Where kubeadm's kube-controller-manager and kube-scheduler serve /healthz. kubeadm binds them
# to 127.0.0.1, so from elsewhere they are asked through the host (see ON_HOST).
HEALTHZ_PORTS = {"kube-controller-manager": 10257, "kube-scheduler": 10259}
ON_HOST = "curl -sk --max-time 3 -o /dev/null -w '%%{http_code}' https://127.0.0.1:%s/healthz"

# A static pod's newest container, as the host's runtime sees it (kubeadm hosts: crictl), and
# the last lines of its log: why a component that does not serve is not serving.
CONTAINER_LOG_MARK = "--- hakit: its log ---"
# Its last words: the log's last error lines (a component's usage text can follow them), else its last lines.
ON_HOST_CONTAINER = ("command -v crictl >/dev/null 2>&1 || exit 3; id=$(crictl ps -a -q --name %s | head -n 1); "
                     "[ -n \"$id\" ] || exit 4; crictl inspect \"$id\" && echo %s && "
                     "{ crictl logs --tail 200 \"$id\" 2>&1 | grep -E '^(Error|error|E[0-9]{4}|F[0-9]{4}|panic)' "
                     "| tail -n 3 | grep . || crictl logs --tail 3 \"$id\" 2>&1; }")


def container_story(stdout: str, manifest: str) -> str:
    """What ON_HOST_CONTAINER printed, in a line: the container's state, exit code, restarts and
    its last words; for one that exits at once, that a restart will not help. '' if unreadable."""
    inspected, _, log = stdout.partition(CONTAINER_LOG_MARK)
    try:
        status = json.loads(inspected)["status"]
    except (ValueError, KeyError, TypeError):
        return ""
    state = str(status.get("state", "?")).removeprefix("CONTAINER_").lower()
    code, restarts = status.get("exitCode"), (status.get("metadata") or {}).get("attempt", 0)
    last = " / ".join(line.strip() for line in log.strip().splitlines() if line.strip())[-240:]
    story = f"its container: {state}" + (f" (exit code {code})" if state == "exited" else "") + \
        f", restarted {restarts} time(s)" + (f"; its log: {last}" if last else "")
    if state == "exited" and code not in (0, None) and restarts:
        story += f"; {EXITS_AT_ONCE}: fix {manifest} (see its log: crictl logs)"
    return story


# The copy of a static pod's manifest kubeadm kept (each `kubeadm upgrade` backs the manifests up),
# the newest, and how the manifest in use differs from it: the lines added or removed.
KEPT_MANIFEST = ("k=$(ls -t /etc/kubernetes/tmp/kubeadm-backup-manifests-*/%s 2>/dev/null | head -n 1); "
                 "[ -n \"$k\" ] || exit 4; echo \"$k\"; diff -u \"$k\" %s | grep -E '^[-+] ' | head -n 6")


def kept_diff(stdout: str) -> str:
    """What KEPT_MANIFEST printed, in a line: 'it differs from the copy kubeadm kept (PATH): +LINE, -LINE'
    ('' when nothing differs or nothing was printed)."""
    printed = [line for line in stdout.splitlines() if line.strip()]
    if len(printed) < 2:
        return ""
    path, lines = printed[0], printed[1:]
    return f"it differs from the copy kubeadm kept ({path}): " + ", ".join(
        f"{line[0]}{line[1:].strip()}" for line in lines)
