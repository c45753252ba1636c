"""Network faults on a host, as shell commands. Link and partition faults cut the
very network an SSH session travels on, so on the host they are scheduled to heal
themselves after a fixed time; the restore then waits for the host to answer again.

Every address and interface name placed in a command is validated and quoted.
"""

from __future__ import annotations

import re
import shlex

from hakit.errors import ConfigError
from hakit.inventory import ip

LINK_FAULT_DELAY = 0.3   # lets the SSH session that schedules a link fault return first
PARTITION_CHAIN = "HAKIT-PARTITION"
HEAL = f"iptables -F {PARTITION_CHAIN} 2>/dev/null; true"
VRRP_SETTLE = 5.0   # seconds: more than 3 missed adverts at keepalived's default advert_int of 1 s, plus skew
INTERFACE = re.compile(r"[A-Za-z0-9_.:-]{1,15}")   # the kernel's IFNAMSIZ, no shell characters


def interface(value: str) -> str:
    if not INTERFACE.fullmatch(value):
        raise ConfigError(f"interface {value[:40]!r}: not an interface name")
    return value


FAULT_STAMP = "/run/hakit-fault-at"   # root's: the host's own clock when the last self-healing fault began


def self_healing(command: str, undo: str, seconds: float) -> str:
    """Run command shortly and undo it `seconds` later, detached from the SSH session that
    starts it, so the undo happens even if the network (or hakit) never comes back. The
    host writes its clock to FAULT_STAMP just before and just after: the fault's time zero
    lies between the two, read later."""
    script = (f"sleep {LINK_FAULT_DELAY}; a=$(date +%s.%N); {command}; echo $a $(date +%s.%N) > {FAULT_STAMP}; "
              f"sleep {float(seconds):g}; {undo}")
    return f"nohup setsid sh -c {shlex.quote(script)} >/dev/null 2>&1 &"


def link_commands(dev: str) -> tuple[str, str]:
    q = shlex.quote(interface(dev))
    return f"ip link set dev {q} down", f"ip link set dev {q} up"


def partition_script(peers: list[str]) -> str:
    """iptables rules in a chain of hakit's own that drop traffic to and from peers."""
    lines = [f"iptables -N {PARTITION_CHAIN} 2>/dev/null; iptables -F {PARTITION_CHAIN}"]
    for peer in peers:
        p = shlex.quote(ip(peer, "partition peer"))
        lines += [f"iptables -A {PARTITION_CHAIN} -s {p} -j DROP", f"iptables -A {PARTITION_CHAIN} -d {p} -j DROP"]
    lines += [f"iptables -C {chain} -j {PARTITION_CHAIN} 2>/dev/null || iptables -I {chain} -j {PARTITION_CHAIN}"
              for chain in ("INPUT", "OUTPUT")]
    return "; ".join(lines)
