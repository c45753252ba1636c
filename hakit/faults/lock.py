"""One disruptive run per cluster at a time.

Two locks, because two operators may run from two machines and two processes from
one: a Lease in kube-system (`hakit-disruptive`, renewed while held, so a crashed
holder's expires) and a file lock beside the fault journal. A second run is refused,
naming the holder and since when. The same process may take the lock again (a
disruptive session, then each fault in it): it is released when the outermost
holder lets go.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from kubernetes import client
from kubernetes.client.rest import ApiException
from urllib3.exceptions import HTTPError

from hakit.errors import PreconditionError
from hakit.faults.journal import Owner

if TYPE_CHECKING:
    from hakit.cluster import Cluster

LEASE, NAMESPACE = "hakit-disruptive", "kube-system"
DURATION = 60          # seconds a Lease holds without renewal: longer than any API outage a fault measures
RENEW_EVERY = DURATION / 4


class Busy(PreconditionError):
    """Another run holds the lock; nothing was touched."""


class RunLock:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.path = Path(f"{cluster.inv.fault_journal}.lock")
        self.me = Owner.me()
        self.identity = f"{self.me.host}/{self.me.pid}/{self.me.started}"
        self._fd: int | None = None
        self._depth = 0
        self._stop = threading.Event()

    def __enter__(self) -> RunLock:
        if self._depth == 0:
            self._lock_file()
            try:
                self._take_lease()
            except BaseException:
                self._unlock_file()
                raise
            self._stop.clear()
            threading.Thread(target=self._renew, name="hakit-lease", daemon=True).start()
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._stop.set()
            self._release_lease()
            self._unlock_file()

    # --- the local lock --------------------------------------------------------------------

    def _lock_file(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise Busy(f"another disruptive run holds {self.path}: {holder}; one run per cluster at a time") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{self.me}, since {_now()}".encode())
        self._fd = fd

    def _unlock_file(self) -> None:
        if self._fd is not None:
            os.close(self._fd)   # closing releases the flock
            self._fd = None

    # --- the cluster-side lock -------------------------------------------------------------

    def _api(self) -> client.CoordinationV1Api:
        return client.CoordinationV1Api(self.cluster.api)

    def _take_lease(self) -> None:
        now = micro_time()
        body = {"metadata": {"name": LEASE, "namespace": NAMESPACE,
                             "labels": {"app.kubernetes.io/managed-by": "hakit"}},
                "spec": {"holderIdentity": self.identity, "leaseDurationSeconds": DURATION,
                         "acquireTime": now, "renewTime": now}}
        try:
            try:
                lease = self._api().read_namespaced_lease(LEASE, NAMESPACE, _request_timeout=10)
            except ApiException as e:
                if e.status != 404:
                    raise
                self._api().create_namespaced_lease(NAMESPACE, body, _request_timeout=10)
                return
            held = lease.spec.holder_identity
            if held and held != self.identity and not _expired(lease.spec) and not _gone(held):
                since = lease.spec.acquire_time.strftime("%Y-%m-%d %H:%M:%S UTC") if lease.spec.acquire_time else "?"
                raise Busy(f"another disruptive run holds Lease {NAMESPACE}/{LEASE}: {_who(held)}, since {since}; "
                           "one run per cluster at a time")
            body["metadata"]["resourceVersion"] = lease.metadata.resource_version   # lost race: 409
            self._api().replace_namespaced_lease(LEASE, NAMESPACE, body, _request_timeout=10)
        except ApiException as e:
            if e.status == 409:
                raise Busy(f"another disruptive run took Lease {NAMESPACE}/{LEASE} just now") from None
            raise PreconditionError(f"cannot take Lease {NAMESPACE}/{LEASE} (HTTP {e.status}): a disruptive run "
                                    "needs get/create/update/delete on leases in kube-system") from None
        except (HTTPError, OSError) as e:
            raise PreconditionError(f"cannot take Lease {NAMESPACE}/{LEASE}: {type(e).__name__}") from None

    def _renew(self) -> None:
        while not self._stop.wait(RENEW_EVERY):
            try:   # an API outage during a fault is what is being measured: try again later
                self._api().patch_namespaced_lease(LEASE, NAMESPACE, {"spec": {"renewTime": micro_time()}},
                                                   _request_timeout=5)
            except (ApiException, HTTPError, OSError):
                continue

    def _release_lease(self) -> None:
        try:
            lease = self._api().read_namespaced_lease(LEASE, NAMESPACE, _request_timeout=10)
            if lease.spec.holder_identity == self.identity:
                self._api().delete_namespaced_lease(LEASE, NAMESPACE, _request_timeout=10)
        except (ApiException, HTTPError, OSError):
            pass   # it expires by itself after DURATION


def _expired(spec: client.V1LeaseSpec) -> bool:
    if spec.renew_time is None:
        return True
    return time.time() - spec.renew_time.timestamp() > (spec.lease_duration_seconds or DURATION)


def _gone(identity: str) -> bool:
    """A holder on this machine whose process has ended (a SIGKILLed run) holds nothing."""
    host, _, rest = identity.partition("/")
    pid, _, started = rest.partition("/")
    return pid.isdigit() and Owner(host, int(pid), started).is_gone()


def _who(identity: str) -> str:
    host, _, rest = identity.partition("/")
    return f"pid {rest.partition('/')[0]} on {host}"


def micro_time() -> datetime:
    """Now, for a MicroTime field. The client sends it as isoformat(), which drops a zero
    fraction that the apiserver then refuses to parse: never a zero fraction."""
    now = datetime.now(UTC)
    return now if now.microsecond else now.replace(microsecond=1)


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
