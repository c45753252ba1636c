"""Network plumbing: an isolated bridge with one namespace per host.

No uplink, no NAT, no default route inside the namespaces: nothing a lab host
does can leave the lab subnet.
"""

from __future__ import annotations

import ipaddress
import subprocess

from hakit.errors import LabError
from hakit.lab.topology import Host, LabSpec


def sh(*argv: str, check: bool = True, netns: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run one command (optionally inside a namespace); raise LabError with its stderr."""
    cmd = (["ip", "netns", "exec", netns] if netns else []) + list(argv)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise LabError(f"`{' '.join(cmd)}` failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def existing_netns(prefix: str) -> list[str]:
    out = sh("ip", "netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(prefix + "-")]


def create(spec: LabSpec) -> None:
    """Create the bridge, one namespace per host, and wire each with a veth pair."""
    sh("ip", "link", "add", spec.bridge, "type", "bridge")
    sh("ip", "addr", "add", f"{spec.gateway}/24", "dev", spec.bridge)
    sh("ip", "link", "set", spec.bridge, "up")
    for host in spec.hosts:
        add_host(spec, host)


def add_host(spec: LabSpec, host: Host) -> None:
    sh("ip", "netns", "add", host.netns)
    sh("ip", "link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.netns)
    sh("ip", "link", "set", host.veth, "master", spec.bridge)
    sh("ip", "link", "set", host.veth, "up")
    sh("ip", "addr", "add", f"{host.address}/24", "dev", "eth0", netns=host.netns)
    sh("ip", "link", "set", "lo", "up", netns=host.netns)
    sh("ip", "link", "set", "eth0", "up", netns=host.netns)


def destroy(spec: LabSpec) -> None:
    """Remove namespaces, veths and the bridge; idempotent (missing parts are fine)."""
    for ns in existing_netns(spec.prefix):
        sh("ip", "netns", "delete", ns, check=False)
    for host in spec.hosts:
        sh("ip", "link", "delete", host.veth, check=False)
    sh("ip", "link", "delete", spec.bridge, check=False)


def netns_pids(netns: str) -> list[int]:
    out = sh("ip", "netns", "pids", netns, check=False).stdout
    return [int(p) for p in out.split()]


def set_link(host: Host, up: bool) -> None:
    """Take a host's only link down (a host failure as its peers see it) or back up."""
    sh("ip", "link", "set", "eth0", "up" if up else "down", netns=host.netns)


def link_is_up(host: Host) -> bool:
    out = sh("ip", "-o", "link", "show", "eth0", netns=host.netns, check=False).stdout
    return "state UP" in out or ",UP" in out.split(">")[0]


PARTITION_CHAIN = "HAKIT-PARTITION"


def partition(spec: LabSpec, host: Host) -> None:
    """Drop all traffic between host and the other lab hosts; the root namespace
    (where hakit itself runs) still reaches it, as a bastion on another network would."""
    sh("iptables", "-N", PARTITION_CHAIN, netns=host.netns, check=False)
    sh("iptables", "-F", PARTITION_CHAIN, netns=host.netns)
    for other in spec.hosts:
        if other.name != host.name:
            sh("iptables", "-A", PARTITION_CHAIN, "-s", other.address, "-j", "DROP", netns=host.netns)
            sh("iptables", "-A", PARTITION_CHAIN, "-d", other.address, "-j", "DROP", netns=host.netns)
    for chain in ("INPUT", "OUTPUT"):
        if sh("iptables", "-C", chain, "-j", PARTITION_CHAIN, netns=host.netns, check=False).returncode:
            sh("iptables", "-I", chain, "-j", PARTITION_CHAIN, netns=host.netns)


def heal(host: Host) -> None:
    """Undo partition(); harmless when the host is not partitioned."""
    sh("iptables", "-F", PARTITION_CHAIN, netns=host.netns, check=False)


def is_partitioned(host: Host) -> bool:
    out = sh("iptables", "-S", PARTITION_CHAIN, netns=host.netns, check=False).stdout
    return "-j DROP" in out


def holds_address(host: Host, address: str) -> bool:
    out = sh("ip", "-o", "-4", "addr", "show", "dev", "eth0", netns=host.netns, check=False).stdout
    return f" {address}/" in out


SUBNET_CANDIDATES = ("172.31.250.0/24", "172.31.251.0/24", "10.250.250.0/24", "192.168.250.0/24")


def free_subnet(skip: int = 0) -> str:
    """The first candidate /24 that no route of this machine overlaps; `skip` passes over that
    many free ones, so two labs brought up at the same moment (make test's two tiers) differ."""
    routes = subprocess.run(["ip", "-4", "route", "show"], capture_output=True, text=True).stdout
    used = []
    for line in routes.splitlines():
        dest = line.split()[0]
        if dest != "default":
            try:
                used.append(ipaddress.ip_network(dest, strict=False))
            except ValueError:
                continue
    free = [c for c in SUBNET_CANDIDATES if not any(ipaddress.ip_network(c).overlaps(u) for u in used)]
    if len(free) > skip:
        return free[skip]
    raise LabError(f"fewer than {skip + 1} of the candidate lab subnets are free of this machine's routes: "
                   f"{', '.join(SUBNET_CANDIDATES)}")
