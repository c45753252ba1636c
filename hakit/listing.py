"""One paginated LIST, for every reader of the Kubernetes API: pages of PAGE items, a page
the server refuses for a moment (429/5xx through a VIP to a lagging apiserver) retried after
its Retry-After, a continue token that expired (410) listed again from the start. Raw JSON
for the fleet (hakit.workloads: 30,000 pods), client objects for the small lists (hakit.snapshot).
"""

from __future__ import annotations

import json
import queue
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import tenacity
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from hakit.errors import UnreachableError

PAGE = 500
T = TypeVar("T")


class Expired(Exception):
    """A continue token too old to resume (HTTP 410): list again from the start."""


def page(fn: Any, what: str, token: str | None, *args: Any, raw: bool = True, timeout: float = 60, tries: int = 5,
         **kwargs: Any) -> Any:
    """One page: the JSON the server sent (raw), else client objects. Through a VIP, page n+1
    may reach another apiserver whose watch cache lags the one that issued the token: it
    answers 504 (or 429/5xx) with Retry-After, which is honoured, a few times, before giving up."""
    def get() -> Any:
        if raw:
            return fn(*args, limit=PAGE, _continue=token, _preload_content=False, _request_timeout=timeout,
                      **kwargs).data
        return fn(*args, limit=PAGE, _continue=token, _request_timeout=timeout, **kwargs)
    try:
        return tenacity.Retrying(retry=tenacity.retry_if_exception(_refused_for_now), wait=_retry_after,
                                 stop=tenacity.stop_after_attempt(tries), reraise=True)(get)
    except ApiException as e:
        if e.status == 410 and token:
            raise Expired() from None
        raise UnreachableError(f"API list {what}: HTTP {e.status} {e.reason}", ("", "api")) from None
    except HTTPError as e:
        raise UnreachableError(f"API list {what}: {type(e).__name__}", ("", "api")) from None


def _refused_for_now(e: BaseException) -> bool:
    return isinstance(e, ApiException) and e.status in (429, 500, 503, 504)


def _retry_after(state: tenacity.RetryCallState) -> float:
    """The server's Retry-After in seconds (a date there is not waited for), else the attempt's
    number; at most 10."""
    e = state.outcome.exception() if state.outcome else None
    given = str((getattr(e, "headers", None) or {}).get("Retry-After") or "")
    return min(float(given) if given.replace(".", "", 1).isdigit() else float(state.attempt_number), 10.0)


LIST_META = re.compile(rb'"metadata":\s*(\{[^{}]*\})')   # a list's own metadata: no nested object


def continue_token(raw: bytes | str) -> str | None:
    """The continue token of a page, read from the list's metadata at the page's head (the
    server writes it before the items) without decoding the items; decoded in full if not."""
    raw = raw.encode() if isinstance(raw, str) else raw
    head = raw[:4096]
    m = LIST_META.search(head)
    if m and (b'"items"' not in head[:m.start()]):
        return json.loads(m.group(1)).get("continue")
    return (json.loads(raw).get("metadata") or {}).get("continue")


def raw_pages(fn: Any, what: str) -> Iterator[bytes | str]:
    """A paginated LIST's pages, the next one fetched while the caller decodes this one (500
    pods are 2 MB of JSON: decoding them takes about as long as the server takes to send them)."""
    ready: queue.Queue[bytes | str | BaseException | None] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def put(item: bytes | str | BaseException | None) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def fetch() -> None:
        token = None
        try:
            while put(raw := page(fn, what, token)) and (token := continue_token(raw)):
                pass
            put(None)
        except BaseException as e:  # noqa: BLE001 - raised again in the caller's thread
            put(e)
    threading.Thread(target=fetch, name=f"hakit-list-{what}", daemon=True).start()
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def listed(fn: Any, what: str, keep: Callable[[dict[str, Any]], T | None]) -> list[T]:
    """Every item of a paginated LIST through `keep` (None drops it), page by page so only the
    small records stay in memory; when the continue token expires, the list starts over."""
    for _ in range(3):
        out: list[T] = []
        try:
            for raw in raw_pages(fn, what):
                out.extend(r for r in map(keep, json.loads(raw).get("items") or []) if r is not None)
            return out
        except Expired:
            continue
    raise UnreachableError(f"API list {what}: its continue token expired three times (410)", ("", "api"))


def items(fn: Any, *args: Any, **kwargs: Any) -> list[Any]:
    """Every item of a paginated LIST as client objects (a few hundred: nodes, kube-system's
    pods, leases, PDBs); retried and restarted as listed() is."""
    what = fn.__name__.removeprefix("list_")   # "node", "namespaced_pod"
    for _ in range(3):
        out: list[Any] = []
        token = None
        try:
            while True:
                got = page(fn, what, token, *args, raw=False, timeout=10, **kwargs)
                out.extend(got.items)
                if not (token := got.metadata._continue):
                    return out
        except Expired:
            continue
    raise UnreachableError(f"API list {what}: its continue token expired three times (410)", ("", "api"))
