"""etcd over its own v3 JSON gateway (the client port), so an audit needs no
etcdctl on the machine it runs from: just the client certificate."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests

from hakit import http, paths
from hakit.errors import HakitError, UnreachableError

PEER_PORT = 2380   # etcd's and kubeadm's default


@dataclass(frozen=True)
class MemberStatus:
    endpoint: str
    member_id: str
    cluster_id: str
    leader: str
    raft_term: int
    revision: int
    db_size: int
    db_size_in_use: int
    version: str
    errors: tuple[str, ...]

    @property
    def is_leader(self) -> bool:
        return self.member_id == self.leader


@dataclass(frozen=True)
class Member:
    id: str
    name: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]
    is_learner: bool


# hakit's snapshot files: only these are read as backups or rotated away, never any *.db
# that happens to share the directory.
SNAPSHOT = re.compile(r"etcd-\d{8}T\d{6}Z?\.db")


def snapshot_name() -> str:
    return f"etcd-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.db"


def snapshots(directory: Path) -> list[Path]:
    """hakit's snapshot files in directory, newest first."""
    found = [p for p in directory.glob("etcd-*.db") if SNAPSHOT.fullmatch(p.name) and p.is_file()]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def snapshot_status(path: Path) -> dict:
    """`etcdutl snapshot status`: hash, revision, totalKey, totalSize. Raises for a file
    that is not a readable snapshot (empty, truncated, not bolt)."""
    done = subprocess.run([paths.program("etcdutl"), "snapshot", "status", str(path), "-w", "json"],
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
        raise HakitError(f"etcdutl snapshot status {path.name}: {lines[-1][:200]}")
    status = json.loads(done.stdout)
    if not status.get("totalKey"):
        raise HakitError(f"{path.name} holds no keys: not a usable backup")
    return status


@dataclass(frozen=True)
class Quorum:
    """etcd's quorum arithmetic, over voting members only: a learner neither votes nor
    counts toward quorum, so 3 voters + 1 learner tolerate one failure, like 3."""

    voters: int
    healthy: int    # healthy voters

    @property
    def needed(self) -> int:
        return self.voters // 2 + 1

    @property
    def tolerance(self) -> int:
        """How many more healthy voters may fail before quorum is lost (negative: lost)."""
        return self.healthy - self.needed

    @classmethod
    def of(cls, members: list[tuple[Member, bool]]) -> Quorum:
        """From (member, healthy) pairs, learners left out."""
        votes = [ok for m, ok in members if not m.is_learner]
        return cls(len(votes), sum(votes))


def unstarted_learners(members: list[Member]) -> list[Member]:
    """Learners added (`member add --learner`) whose process never started: no name yet.
    A half-done `member add`, to finish (start it) or undo (`member remove`)."""
    return [m for m in members if m.is_learner and not m.name]


class EtcdClient:
    def __init__(self, endpoints: list[str], ca: Path | None, cert: Path | None, key: Path | None,
                 timeout: float = 3.0) -> None:
        self.endpoints = endpoints
        self.session = http.session(ca, cert, key)
        self.timeout = timeout

    def _post(self, endpoint: str, path: str, body: dict) -> dict:
        try:
            r = self.session.post(f"{endpoint}{path}", json=body, timeout=self.timeout)
        except requests.RequestException as e:
            raise UnreachableError(f"etcd {endpoint}: {type(e).__name__}: {_short(e)}",
                                   (urlsplit(endpoint).hostname or endpoint, "etcd")) from None
        if r.status_code != 200:
            raise UnreachableError(f"etcd {endpoint}{path}: HTTP {r.status_code} {r.text.strip()[:120]}",
                                   (urlsplit(endpoint).hostname or endpoint, "etcd"))
        return r.json()

    def status(self, endpoint: str) -> MemberStatus:
        d = self._post(endpoint, "/v3/maintenance/status", {})
        h = d.get("header", {})
        return MemberStatus(endpoint=endpoint, member_id=str(h.get("member_id", "")),
                            cluster_id=str(h.get("cluster_id", "")), leader=str(d.get("leader", "")),
                            raft_term=int(d.get("raftTerm", h.get("raft_term", 0))),
                            revision=int(h.get("revision", 0)), db_size=int(d.get("dbSize", 0)),
                            db_size_in_use=int(d.get("dbSizeInUse", 0)), version=d.get("version", ""),
                            errors=tuple(d.get("errors", [])))

    def statuses(self) -> dict[str, MemberStatus | str]:
        """Each endpoint's status, or the one-line reason it gave none."""
        out: dict[str, MemberStatus | str] = {}
        for ep in self.endpoints:
            try:
                out[ep] = self.status(ep)
            except UnreachableError as e:
                out[ep] = str(e)
        return out

    def members(self) -> list[Member]:
        d = self._first("/v3/cluster/member/list", {"linearizable": True})
        return [Member(id=str(m.get("ID", "")), name=m.get("name", ""), peer_urls=tuple(m.get("peerURLs", [])),
                       client_urls=tuple(m.get("clientURLs", [])), is_learner=bool(m.get("isLearner")))
                for m in d.get("members", [])]

    def remove_member(self, member_id: str) -> None:
        """`etcdctl member remove`: the first endpoint that answers carries it out."""
        self._first("/v3/cluster/member/remove", {"ID": member_id})

    def add_member(self, peer_urls: list[str], learner: bool = False) -> str:
        """`etcdctl member add [--learner]`; returns the new member's id."""
        return str(self._first("/v3/cluster/member/add", {"peerURLs": peer_urls, "isLearner": learner})["member"]["ID"])

    def _first(self, path: str, body: dict) -> dict:
        last: Exception | None = None
        for ep in self.endpoints:
            try:
                return self._post(ep, path, body)
            except UnreachableError as e:
                last = e
        raise last or UnreachableError("etcd: no endpoints")

    def put(self, endpoint: str, key: str, value: str) -> int:
        """A write through one member; returns the revision it created."""
        d = self._post(endpoint, "/v3/kv/put", {"key": _b64(key), "value": _b64(value)})
        return int(d.get("header", {}).get("revision", 0))

    def delete_prefix(self, prefix: str) -> None:
        """Remove every key under prefix (hakit's own probe keys)."""
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        self._first("/v3/kv/deleterange", {"key": _b64(prefix), "range_end": _b64(end)})

    def disarm(self, member_id: str, alarm: str) -> None:
        """`etcdctl alarm disarm` for one member's alarm."""
        self._first("/v3/maintenance/alarm", {"action": "DEACTIVATE", "memberID": member_id, "alarm": alarm})

    def alarms(self) -> list[tuple[str, str]]:
        """(member id, alarm) pairs: NOSPACE, CORRUPT."""
        d = self._first("/v3/maintenance/alarm", {"action": "GET"})
        return [(str(a.get("memberID", "")), a.get("alarm", "")) for a in d.get("alarms", []) or []]

    def answers_without_certificate(self, endpoint: str) -> str | None:
        """What the member says to a client that shows no certificate: None when it refuses
        it (the TLS handshake fails or it answers 401/403), else what it answered."""
        bare = http.session(self.session.verify if isinstance(self.session.verify, str) else None)
        try:
            r = bare.post(f"{endpoint}/v3/maintenance/status", json={}, timeout=self.timeout)
        except requests.RequestException:
            return None
        return None if r.status_code in (401, 403) else f"HTTP {r.status_code}"

    def health(self, endpoint: str) -> tuple[bool, str]:
        """etcd's own /health: true only when the member has a leader and can serve."""
        try:
            r = self.session.get(f"{endpoint}/health", timeout=self.timeout)
            d = r.json()
        except (requests.RequestException, ValueError) as e:
            return False, f"{type(e).__name__}: {_short(e)}"
        return d.get("health") == "true", d.get("reason", "") or f"HTTP {r.status_code}"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _short(e: Exception) -> str:
    text = str(e)
    for marker in ("Caused by ", "Failed to establish a new connection: "):
        if marker in text:
            text = text.split(marker, 1)[1]
    return text.strip("()'\" ")[:160]
