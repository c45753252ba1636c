"""The fault journal: an append-only JSON-lines file (0600, in a 0700 directory).

Every fault is written down before it is injected (what, where, how to undo it,
which run did it and on which cluster) and marked restored after; whatever is
injected and not restored is what `hakit repair` undoes. A journal is read
strictly: a line that is not a record (torn, edited) stops the reader with its
line number, because guessing what was injected could undo the wrong thing.
Undo instructions are a closed set with validated arguments, so a tampered
journal cannot make hakit call anything else.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hakit.cluster import ClusterId
from hakit.cluster.components import COMPONENTS
from hakit.errors import ConfigError
from hakit.validate import NAME

DEPLOYMENT = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?/[a-z0-9]([-.a-z0-9]{0,251}[a-z0-9])?")


def _matches(pattern: str, v: object) -> bool:
    return isinstance(v, str) and bool(re.fullmatch(pattern, v, re.S))


# kind -> {argument: validator}. Nothing outside this table is ever undone.
_HOST = ("a host name", lambda v: isinstance(v, str) and bool(NAME.fullmatch(v)))
UNDO_KINDS: dict[str, dict[str, tuple[str, Any]]] = {
    "start": {"host": _HOST, "component": ("a component", lambda v: v in COMPONENTS)},
    "heal": {"host": _HOST},
    "wait_answering": {"host": _HOST, "timeout": ("seconds", lambda v: isinstance(v, (int, float)) and 0 < v <= 3600)},
    "undrain": {"host": _HOST, "deployments": ("namespace/name of at most 1000 Deployments", lambda v: isinstance(
        v, list) and len(v) <= 1000 and all(isinstance(d, str) and DEPLOYMENT.fullmatch(d) for d in v))},
    "delete_namespace": {"namespace": ("a hakit probe namespace", lambda v: _matches(r"hakit-[a-z0-9-]{1,50}", v))},
    "expire_silences": {"url": ("an http(s) URL", lambda v: _matches(r"https?://\S+", v)),
                        "comment": ("a hakit silence comment", lambda v: _matches(r"hakit .*", v))},
}


class JournalError(ConfigError):
    """The journal cannot be trusted as it is: one line says where and why."""


def validate_undo(undo: Any, where: str = "undo") -> dict[str, Any]:
    """undo if it is one of the known kinds with valid arguments, else JournalError."""
    if not isinstance(undo, dict) or undo.get("kind") not in UNDO_KINDS:
        kind = undo.get("kind") if isinstance(undo, dict) else undo
        raise JournalError(f"{where}: unknown undo kind {str(kind)[:40]!r}; expected one of {', '.join(UNDO_KINDS)}")
    spec = UNDO_KINDS[undo["kind"]]
    args = {k: v for k, v in undo.items() if k != "kind"}
    if set(args) != set(spec):
        raise JournalError(f"{where}: {undo['kind']} takes {', '.join(spec)}; got {', '.join(args) or 'nothing'}")
    for name, (expected, ok) in spec.items():
        if not ok(args[name]):
            raise JournalError(f"{where}: {undo['kind']} {name}={str(args[name])[:60]!r}; expected {expected}")
    return undo


def process_start(pid: int) -> str:
    """When a process started (clock ticks since boot, /proc/PID/stat field 22): with the pid
    and host, it names one process even after the pid is reused."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


@dataclass(frozen=True)
class Owner:
    """The run that injected a fault."""

    host: str
    pid: int
    started: str

    @classmethod
    def me(cls) -> Owner:
        return cls(socket.gethostname(), os.getpid(), process_start(os.getpid()))

    def is_gone(self) -> bool:
        """Only a run on this machine can be seen to be gone; one elsewhere is assumed alive."""
        if self.host != socket.gethostname():
            return False
        return process_start(self.pid) != self.started or not self.started

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}"


@dataclass(frozen=True)
class Entry:
    id: str
    fault: str          # what was done, in words: "stop etcd on cp3"
    undo: dict          # how to undo it: {"kind": "start", "host": "cp3", "component": "etcd"}
    injected_at: float
    owner: Owner = field(default_factory=Owner.me)
    cluster: ClusterId = field(default_factory=ClusterId)


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _append(self, record: dict) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, (json.dumps(record) + "\n").encode())
            os.fsync(fd)   # on disk before the fault happens: a SIGKILL may follow
        finally:
            os.close(fd)

    def injecting(self, fault: str, undo: dict, cluster: ClusterId) -> Entry:
        entry = Entry(uuid.uuid4().hex[:12], fault, validate_undo(undo), time.time(), Owner.me(), cluster)
        self._append({"event": "inject", **asdict(entry)})
        return entry

    def restored(self, entry_id: str) -> None:
        self._append({"event": "restore", "id": entry_id, "restored_at": time.time()})

    def pending(self) -> list[Entry]:
        """Faults injected and never restored, oldest first."""
        open_: dict[str, Entry] = {}
        if not self.path.exists():
            return []
        text = self.path.read_text(errors="replace")
        if text and not text.endswith("\n"):
            raise JournalError(f"fault journal {self.path}: its last line is cut short (a write was interrupted): "
                               "read it, undo by hand what it names, then move the file aside")
        for n, line in enumerate(text.split("\n")[:-1], 1):
            rec = self._record(n, line)
            if rec["event"] == "inject":
                open_[rec["id"]] = rec["entry"]
            else:
                open_.pop(rec["id"], None)
        return list(open_.values())

    def _record(self, n: int, line: str) -> dict[str, Any]:
        where = f"fault journal {self.path} line {n}"
        try:
            rec = json.loads(line)
            if rec["event"] == "restore":
                return {"event": "restore", "id": str(rec["id"])}
            if rec["event"] != "inject":
                raise ValueError(f"unknown event {str(rec['event'])[:20]!r}")
            owner, cluster = rec.get("owner") or {}, rec.get("cluster") or {}
            entry = Entry(str(rec["id"]), str(rec["fault"])[:200], validate_undo(rec["undo"], where),
                          float(rec["injected_at"]),
                          Owner(str(owner.get("host", "")), int(owner.get("pid", 0)), str(owner.get("started", ""))),
                          ClusterId(str(cluster.get("kube_system_uid", "")), str(cluster.get("etcd_cluster_id", ""))))
        except JournalError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise JournalError(f"{where}: not a journal record ({type(e).__name__}: {str(e)[:80]}); "
                               "hakit will not guess what was injected: inspect the file") from None
        return {"event": "inject", "id": entry.id, "entry": entry}
