"""Parsers of what hosts print (`ip addr`, keepalived.conf), in Python
where they are unit-tested; reaching the hosts is hakit.cluster.ssh's job."""

from __future__ import annotations

import re
from dataclasses import dataclass


def interface_with(ip_addr_output: str, address: str) -> str | None:
    """The interface that carries address, from `ip -o -4 addr show` output."""
    for line in ip_addr_output.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[2] == "inet" and fields[3].split("/")[0] == address:
            return fields[1].split("@")[0]
    return None

def ipv4_addresses(ip_addr_output: str) -> list[str]:
    """Addresses from `ip -o -4 addr show` output."""
    return re.findall(r"\binet (\d+\.\d+\.\d+\.\d+)/", ip_addr_output)

@dataclass(frozen=True)
class VrrpInstance:
    name: str
    virtual_router_id: int | None
    priority: int | None
    auth_pass: str | None
    track_scripts: tuple[str, ...]
    nopreempt: bool
    vips: tuple[str, ...]
    advert_int: float = 1.0

def parse_keepalived(conf: str) -> list[VrrpInstance]:
    """The vrrp_instance blocks of a keepalived.conf (comments stripped)."""
    text = "\n".join(line.split("!")[0].split("#")[0] for line in conf.splitlines())
    out = []
    for m in re.finditer(r"vrrp_instance\s+(\S+)\s*\{", text):
        body = _block(text, m.end())
        vips_block = re.search(r"virtual_ipaddress\s*\{", body)
        track_block = re.search(r"track_script\s*\{", body)
        out.append(VrrpInstance(
            name=m.group(1),
            virtual_router_id=_int(re.search(r"\bvirtual_router_id\s+(\d+)", body)),
            priority=_int(re.search(r"\bpriority\s+(\d+)", body)),
            auth_pass=(a.group(1) if (a := re.search(r"\bauth_pass\s+(\S+)", body)) else None),
            track_scripts=tuple(_block(body, track_block.end()).split()) if track_block else (),
            nopreempt=bool(re.search(r"^\s*nopreempt\b", body, re.M)),
            advert_int=float(a.group(1)) if (a := re.search(r"\badvert_int\s+([\d.]+)", body)) else 1.0,
            vips=tuple(re.findall(r"(\d+\.\d+\.\d+\.\d+)", _block(body, vips_block.end()))) if vips_block else ()))
    return out

def _block(text: str, start: int) -> str:
    """The text of a {...} block whose opening brace ends just before start."""
    depth, i = 1, start
    while i < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return text[start:i - 1]

def _int(m: re.Match[str] | None) -> int | None:
    return int(m.group(1)) if m else None
