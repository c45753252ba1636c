"""The fault journal: an append-only JSON-lines file. Every fault is written
down (what, where, how to undo it) before it is injected and marked restored
after; whatever is injected and not restored is what `hakit repair` undoes."""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    id: str
    fault: str          # what was done, in words: "stop etcd on cp3"
    undo: dict          # how to undo it: {"kind": "start", "host": "cp3", "component": "etcd"}
    injected_at: float


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _append(self, record: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())  # on disk before the fault happens: a SIGKILL may follow

    def injecting(self, fault: str, undo: dict) -> Entry:
        entry = Entry(uuid.uuid4().hex[:12], fault, undo, time.time())
        self._append({"event": "inject", **asdict(entry)})
        return entry

    def restored(self, entry_id: str) -> None:
        self._append({"event": "restore", "id": entry_id, "restored_at": time.time()})

    def pending(self) -> list[Entry]:
        """Faults injected and never restored, oldest first. A torn last line (a crash
        mid-write) is skipped: its fault was never injected."""
        open_: dict[str, Entry] = {}
        if not self.path.exists():
            return []
        for line in self.path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("event") == "inject":
                open_[rec["id"]] = Entry(rec["id"], rec["fault"], rec["undo"], rec["injected_at"])
            elif rec.get("event") == "restore":
                open_.pop(rec["id"], None)
        return list(open_.values())
