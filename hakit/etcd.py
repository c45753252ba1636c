"""etcd over its own v3 JSON gateway (the client port), so an audit needs no
etcdctl on the machine it runs from: just the client certificate."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import requests

from hakit import http
from hakit.errors import UnreachableError

CLIENT_PORT, PEER_PORT = 2379, 2380   # etcd's and kubeadm's defaults


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
            raise UnreachableError(f"etcd {endpoint}: {type(e).__name__}: {_short(e)}") from None
        if r.status_code != 200:
            raise UnreachableError(f"etcd {endpoint}{path}: HTTP {r.status_code} {r.text.strip()[:120]}")
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

    def members(self) -> list[Member]:
        d = self._first("/v3/cluster/member/list", {"linearizable": True})
        return [Member(id=str(m.get("ID", "")), name=m.get("name", ""), peer_urls=tuple(m.get("peerURLs", [])),
                       client_urls=tuple(m.get("clientURLs", [])), is_learner=bool(m.get("isLearner")))
                for m in d.get("members", [])]

    def remove_member(self, member_id: str) -> None:
        """`etcdctl member remove`: the first endpoint that answers carries it out."""
        self._first("/v3/cluster/member/remove", {"ID": member_id})

    def add_member(self, peer_urls: list[str]) -> str:
        """`etcdctl member add`; returns the new member's id."""
        return str(self._first("/v3/cluster/member/add", {"peerURLs": peer_urls})["member"]["ID"])

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
