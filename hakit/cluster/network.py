"""The network as hosts see it: who holds the VIP, a host's interface and clock, and the
network faults (link down, partition), as shell commands. Link and partition faults cut
the very network an SSH session travels on, so on the host they are scheduled to heal
themselves after a fixed time; the restore then waits for the host to answer again.

Every address and interface name placed in a command is validated and quoted.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time

from hakit import hosts, wait
from hakit.cluster import ssh
from hakit.cluster.access import Access
from hakit.errors import ConfigError, HakitError, UnreachableError
from hakit.validate import ip

LINK_FAULT_DELAY = 0.3   # lets the SSH session that schedules a link fault return first
PARTITION_CHAIN = "HAKIT-PARTITION"
HEAL = f"iptables -F {PARTITION_CHAIN} 2>/dev/null; true"
VRRP_SETTLE = 5.0   # seconds: more than 3 missed adverts at keepalived's default advert_int of 1 s, plus skew
INTERFACE = re.compile(r"[A-Za-z0-9_.:-]{1,15}")   # the kernel's IFNAMSIZ, no shell characters


def valid_interface(value: str) -> str:
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
    q = shlex.quote(valid_interface(dev))
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


class Network(Access):
    def vip_holders(self) -> list[str]:
        return [h.name for h in self.inv.control_plane if self.holds(h.name, self.inv.vip)]

    def one_vip_holder_for(self, seconds: float = VRRP_SETTLE) -> bool:
        """One holder now and throughout the next seconds: a keepalived just (re)started is a
        BACKUP until it misses three adverts, so one holder at first sight may be a split
        brain about to happen."""
        return wait.holds(lambda: len(self.vip_holders()) == 1, seconds)

    def holds(self, host: str, address: str) -> bool:
        """Whether the host carries address (the VIP) on any interface."""
        return address in hosts.ipv4_addresses(self.run(host, "ip -o -4 addr show").stdout)

    def interface(self, host: str) -> str:
        out = self.run(host, "ip -o -4 addr show").stdout
        iface = hosts.interface_with(out, self.addresses[host])
        if iface is None:
            raise HakitError(f"host {host}: no interface carries {self.addresses[host]}")
        return valid_interface(iface)

    def link_down(self, host: str, seconds: float) -> None:
        """The host's link goes down now and comes back by itself after `seconds`."""
        down, up = link_commands(self.interface(host))
        self.must(host, "scheduling a link fault", self_healing(down, up, seconds))

    def clock_offset(self, host: str) -> tuple[float, float]:
        """The host's clock minus this machine's, and its uncertainty: half the shortest of three
        round trips inside one open SSH session (a whole command's round trip includes the
        handshake, and the remote clock is read near its end, not its middle: 0.1 s of bias)."""
        self.host(host)   # resolves a node's address
        if self.inv.ssh is None:   # Ansible: one command's round trip is all there is
            sent = time.time()
            remote = float(self.must(host, "reading the clock", "date +%s.%N"))
            back = time.time()
            return remote - (sent + back) / 2, (back - sent) / 2
        argv = ssh.ssh_argv(self.inv.ssh, self.addresses[host],
                            "echo ready; for i in 1 2 3; do read x || exit; date +%s.%N; done")
        trips = []
        with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1) as proc:
            assert proc.stdin is not None and proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise UnreachableError(f"{host}: could not read its clock over SSH")
            for _ in range(3):
                sent = time.time()
                proc.stdin.write("\n")
                proc.stdin.flush()
                try:
                    remote = float(proc.stdout.readline())
                except ValueError:   # the session ended
                    raise UnreachableError(f"{host}: could not read its clock over SSH") from None
                trips.append((time.time() - sent, remote - (sent + time.time()) / 2))
        rtt, offset = min(trips)
        return offset, rtt / 2

    def fault_began(self, host: str) -> tuple[float, float]:
        """When the host's last self-healing fault began, by its own clock, as this machine's
        time.monotonic(), and the uncertainty of that (the bracket around the command on the
        host, plus the clock offset's)."""
        before, after = map(float, self.must(host, "reading when the fault began", "cat -- %s",
                                             FAULT_STAMP).split())
        offset, pm = self.clock_offset(host)
        return (before + after) / 2 - offset - (time.time() - time.monotonic()), pm + (after - before) / 2

    def partition(self, host: str, seconds: float) -> None:
        """Drop traffic between host and the other control-plane hosts; heals by itself
        after `seconds` if heal() never comes."""
        peers = [a for n, a in self.addresses.items() if n != host]
        script = partition_script(peers) + "; " + self_healing("true", HEAL, seconds)
        self.must(host, "partitioning", script)

    def heal(self, host: str) -> None:
        self.must(host, "healing a partition", HEAL)

    def wait_answering(self, host: str, timeout: float) -> None:
        """Until the host answers over SSH again (after a self-healing link fault)."""
        def answers() -> bool:
            try:
                return self.run(host, "true").rc == 0
            except UnreachableError:
                return False
        wait.until(answers, timeout, f"{host} to answer over SSH again", interval=1.0)
