"""Input from outside (an inventory, a journal, the cluster itself) validated at the edge:
the patterns every name, path and image must match before it may reach a command, an IP
address or URL check that says what it got, and the Reader that walks a user's YAML.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hakit.errors import ConfigError

NAME = re.compile(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?")            # DNS-1123: hosts, nodes, namespaces
CLUSTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
HOST_PATH = re.compile(r"/[A-Za-z0-9._/{}+-]*")                          # absolute; {host} allowed
PROGRAM = re.compile(r"[A-Za-z0-9._/+-]+")
IMAGE = re.compile(r"[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]{1,128})?(@sha256:[0-9a-f]{64})?")   # an image reference


def ip(value: str, what: str) -> str:
    """value if it is an IP address, else one ConfigError line naming what it was."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ConfigError(f"{what}: {value[:60]!r} is not an IP address") from None


def is_url(value: str, ip_host: bool = False) -> bool:
    """An http(s) URL with a host and no whitespace or quotes; optionally an IP host and a port."""
    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and not re.search(r"[\s\"'`\\]", value)
        if ok and ip_host:
            ipaddress.ip_address(parts.hostname)
            ok = parts.port is not None
    except ValueError:
        ok = False
    return ok


class Reader:
    """Walks a YAML document read from a user and collects every problem with its field path,
    so a file is fixed in one go rather than one error per run."""

    def __init__(self, doc: dict[str, Any], base: Path) -> None:
        self.doc, self.base, self.errors = doc, base, []  # type: ignore[var-annotated]

    def get(self, path: str, kind: type | tuple[type, ...], default: Any = ..., expect: str = "") -> Any:
        node: Any = self.doc
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is ...:
                    self.errors.append(f"{path}: missing; expected {expect or kind_name(kind)}")
                return None if default is ... else default
            node = node[part]
        if node is None and default is not ...:
            return default
        if kind is float and isinstance(node, int) and not isinstance(node, bool):
            node = float(node)
        if not isinstance(node, kind) or (kind is int and isinstance(node, bool)):
            self.errors.append(f"{path}: got {type(node).__name__} {node!r:.40}; expected {expect or kind_name(kind)}")
            return None if default is ... else default
        return node

    def match(self, path: str, value: Any, pattern: re.Pattern[str], expect: str) -> bool:
        if isinstance(value, str) and pattern.fullmatch(value):
            return True
        self.errors.append(f"{path}: got {value!r:.60}; expected {expect}")
        return False

    def ip(self, path: str, value: Any) -> bool:
        try:
            ipaddress.ip_address(value)
            return True
        except ValueError:
            self.errors.append(f"{path}: got {value!r:.60}; expected an IP address")
            return False

    def port(self, path: str, default: int) -> int:
        value = self.get(path, int, default)
        if not 1 <= value <= 65535:
            self.errors.append(f"{path}: got {value}; expected a port, 1–65535")
        return value

    def url(self, path: str, value: str | None, ip_host: bool = False) -> str | None:
        if value is None:
            return None
        if not is_url(value, ip_host):
            self.errors.append(f"{path}: got {value!r:.60}; expected an http(s) URL"
                               + (" with an IP address and a port" if ip_host else ""))
        return value

    def names(self, path: str) -> list[str]:
        values = self.get(path, list, []) or []
        return [v for i, v in enumerate(values)
                if self.match(f"{path}[{i}]", v if isinstance(v, str) else repr(v), NAME, "a namespace name")]

    def path(self, value: str | None) -> Path | None:
        """A local path, relative to the inventory's directory."""
        if value is None:
            return None
        p = Path(os.path.expanduser(value))
        return p if p.is_absolute() else self.base / p

    def file(self, path: str, value: str | None) -> Path | None:
        p = self.path(value)
        if p is not None and not p.exists():
            self.errors.append(f"{path}: file {p} does not exist")
        return p


def kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", list: "a list", dict: "a mapping",
             bool: "true/false"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)
