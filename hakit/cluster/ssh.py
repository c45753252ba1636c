"""Hosts reached the way an operator reaches them: testinfra over SSH (or an
Ansible inventory, which testinfra reads natively).

Every command goes through `run(host, name, template, *args)`: the template is
hakit's own text, each argument is shell-quoted by testinfra, so nothing read
from an inventory or the cluster is ever parsed by a shell.
"""

from __future__ import annotations

import atexit
import shlex
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import testinfra

from hakit.errors import ConfigError, UnreachableError
from hakit.inventory import SSH, Inventory


@cache
def control_dir() -> Path:
    """A private (0700) directory for this process's SSH control sockets. Multiplexing is
    per process, so no run inherits a session that predates a change on the host (a
    session outlives an sshd restart), and no other user can reach or plant a socket."""
    d = Path(tempfile.mkdtemp(prefix="hakit-ssh-"))
    atexit.register(shutil.rmtree, d, ignore_errors=True)
    return d


# Seconds to connect and finish SSH's handshake: a host whose kernel answers but whose sshd
# does not (frozen, swapping) sends no banner, and without it ssh waits for ever. testinfra
# sets the same for its connections; hakit's own (ssh_argv) need it said.
CONNECT_TIMEOUT = 10


def ssh_options(*, persist: bool = True) -> list[str]:
    """The ssh options every connection uses: never a prompt, a dead link noticed in ~3 s, a
    silent sshd in CONNECT_TIMEOUT, one multiplexed connection per host (%C: a hash of user,
    host and port, so nothing from the inventory becomes part of a path)."""
    opts = ["-o", "BatchMode=yes", "-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=3",
            "-o", f"ConnectTimeout={CONNECT_TIMEOUT}"]
    if persist:
        opts += ["-o", f"ControlPath={control_dir()}/%C"]
    return opts


def connect(inv: Inventory, name: str, address: str) -> Any:
    """A testinfra host for one host of the inventory (or a node at its InternalIP)."""
    if inv.ansible_inventory:
        return testinfra.get_host(f"ansible://{name}", ansible_inventory=inv.ansible_inventory)
    if inv.ssh is None:
        raise ConfigError("access: neither access.ssh nor access.ansible is set; host checks need one")
    # testinfra quotes user, port, key, config and address as arguments; the extra args are
    # hakit's own constants (its ControlPath would be pasted unquoted, so it goes here).
    kwargs: dict[str, Any] = {"ssh_extra_args": " ".join(ssh_options())}
    if inv.ssh.config:
        kwargs["ssh_config"] = inv.ssh.config
    if inv.ssh.key:
        kwargs["ssh_identity_file"] = inv.ssh.key
    return testinfra.get_host(f"ssh://{inv.ssh.user}@{address}:{inv.ssh.port}", **kwargs)


def ssh_argv(ssh: SSH, address: str, command: str) -> list[str]:
    """The ssh argv sharing testinfra's connection, for what testinfra cannot do (feed a
    file to a command's stdin). `command` is run by the remote shell: hakit's own text
    with every value already quoted."""
    return ["ssh", *ssh_options(), "-o", "ControlMaster=auto", "-o", "ControlPersist=60s",
            "-p", str(ssh.port), *(["-F", ssh.config] if ssh.config else []),
            *(["-i", ssh.key] if ssh.key else []), "-l", ssh.user, "--", address, command]


T = TypeVar("T")


def each(hosts: dict[str, Any], fn: Callable[[str, Any], T]) -> dict[str, T]:
    """fn(name, host) on every host at once (one thread per host), results in the hosts' order:
    an audit's host checks cost one round trip, not one per host and command."""
    with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
        futures = {name: pool.submit(fn, name, host) for name, host in hosts.items()}
        return {name: f.result() for name, f in futures.items()}


def run(host: Any, name: str, template: str, *args: object) -> Any:
    """host.run(template, *args), each arg quoted; SSH's own failures (exit 255) become
    one UnreachableError line."""
    try:
        result = host.run(template, *[str(a) for a in args])
    except RuntimeError as e:  # testinfra raises on ssh's own failures
        stderr = getattr(e.args[0], "stderr", "") if e.args else ""
        lines = (stderr or str(e)).strip().splitlines() or ["no output"]
        raise UnreachableError(f"host {name}: ssh failed: {lines[-1][:160]}", (name, "host")) from None
    if result.rc == 255:
        raise UnreachableError(f"host {name}: ssh failed: {(result.stderr or result.stdout).strip()[:160]}",
                               (name, "host"))
    return result


def output(host: Any, name: str, template: str, *args: object) -> str:
    """run()'s stdout; a command that fails is one UnreachableError line naming the host and
    the command (the check could not look), not testinfra's AssertionError."""
    result = run(host, name, template, *args)
    if result.rc != 0:
        raise UnreachableError(f"host {name}: `{template.split()[0]}` failed (exit {result.rc}): "
                               f"{(result.stderr or result.stdout).strip()[:160] or 'no output'}", (name, "host"))
    return result.stdout


def check_reachable(host: Any, name: str) -> None:
    """One round trip, so a wrong key or a dead host is one clear line, not a traceback."""
    result = run(host, name, "true")
    if result.rc != 0:
        raise UnreachableError(f"host {name}: ssh failed: {(result.stderr or result.stdout).strip()[:160]}")


def quote(template: str, *args: str) -> str:
    """template with each argument shell-quoted, as testinfra's run does it."""
    return template % tuple(shlex.quote(a) for a in args)
