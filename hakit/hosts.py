"""Control-plane hosts reached the way an operator reaches them: testinfra over
SSH (or an Ansible inventory, which testinfra reads natively).

Every command goes through testinfra's `run`, which quotes its arguments; the
output is parsed here in Python, where it is unit-tested.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone

import testinfra

from hakit.errors import ConfigError, UnreachableError
from hakit.inventory import SSH, Inventory


def connect(inv: Inventory, name: str, address: str):  # type: ignore[no-untyped-def]
    """A testinfra host for one control-plane host of the inventory."""
    if inv.ansible_inventory:
        return testinfra.get_host(f"ansible://{name}", ansible_inventory=inv.ansible_inventory)
    if inv.ssh is None:
        raise ConfigError("access: neither access.ssh nor access.ansible is set; host checks need one")
    # One multiplexed connection per host and process: a fault's 100 ms probes cost a round
    # trip, not a handshake. Per process, so no run inherits a session that predates a change
    # on the host (a session outlives an sshd restart). Keepalives end it within ~3 s when
    # the host's link goes down.
    kwargs = {"controlpath": control_path(inv.ssh, address),
              "ssh_extra_args": "-o ServerAliveInterval=1 -o ServerAliveCountMax=3"}
    if inv.ssh.config:
        kwargs["ssh_config"] = inv.ssh.config
    if inv.ssh.key:
        kwargs["ssh_identity_file"] = inv.ssh.key
    return testinfra.get_host(f"ssh://{inv.ssh.user}@{address}:{inv.ssh.port}", **kwargs)


def control_path(ssh: SSH, address: str) -> str:
    return f"/tmp/hakit-ssh-{os.getpid()}-{ssh.user}@{address}-{ssh.port}"


def ssh_argv(ssh: SSH, address: str, command: str) -> list[str]:
    """The ssh command line testinfra would run, sharing its connection: for what testinfra
    cannot do (feed a file to a command's stdin)."""
    return ["ssh", "-o", "BatchMode=yes", "-o", "ControlMaster=auto", "-o", "ControlPersist=60s",
            "-o", f"ControlPath={control_path(ssh, address)}", "-p", str(ssh.port),
            *(["-F", ssh.config] if ssh.config else []), *(["-i", ssh.key] if ssh.key else []),
            f"{ssh.user}@{address}", command]


def run(host, name: str, command: str):  # type: ignore[no-untyped-def]
    """host.run(command), with SSH's own failures (exit 255) as one UnreachableError line."""
    try:
        result = host.run(command)
    except RuntimeError as e:  # testinfra raises on ssh's own failures
        stderr = getattr(e.args[0], "stderr", "") if e.args else ""
        raise UnreachableError(f"host {name}: ssh failed: {(stderr or str(e)).strip().splitlines()[-1][:160]}") from None
    if result.rc == 255:
        raise UnreachableError(f"host {name}: ssh failed: {(result.stderr or result.stdout).strip()[:160]}")
    return result


def check_reachable(host, name: str) -> None:  # type: ignore[no-untyped-def]
    """One round trip, so a wrong key or a dead host is one clear line, not a traceback."""
    result = run(host, name, "true")
    if result.rc != 0:
        raise UnreachableError(f"host {name}: ssh failed: {(result.stderr or result.stdout).strip()[:160]}")


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


def parse_enddate(openssl_output: str) -> datetime:
    """`openssl x509 -enddate -noout` → its notAfter, timezone-aware."""
    value = openssl_output.strip().split("=", 1)[1]
    return datetime.strptime(value, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=timezone.utc)
