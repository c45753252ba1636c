"""The kubeadm lab's bare hosts: privileged LXC system containers on an isolated bridge.

Each node boots systemd as PID 1 from an overlay of one cached Debian root filesystem
(hakit/lab/build/rootfs.sh) and comes up with nothing but sshd, networkd and the Debian
packages a kubeadm host would install with apt. Everything Kubernetes is put there by
hakit's provisioning runbooks over SSH, as on any user's hosts. The LXC settings are
those ../shared/lab-facts.md records as working on this kind of machine (cgroup v1,
no CAP_SYS_RESOURCE): each line below says which blocker it answers.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from hakit import wait
from hakit.errors import LabError
from hakit.lab.net import sh

CONTROL_PLANE, WORKER, MONITORING = "control-plane", "worker", "monitoring"
# Global (not per-namespace) sysctls the kubelet insists on: each node sees files holding
# the values it wants, bind-mounted read-only, and the machine keeps its own.
SPOOFED_SYSCTLS = {"vm/overcommit_memory": "1", "kernel/panic": "10", "kernel/panic_on_oops": "1"}
# Every node's root is this machine's root user, and inotify instances are counted per
# user across the machine: seven kubelets, containerds and systemds exhaust Debian's 128
# ("inotify_init: too many open files" and a kubelet that exits). Raised, never lowered,
# as kind's documentation tells its users to.
INOTIFY_MINIMUM = {"fs/inotify/max_user_instances": 1024, "fs/inotify/max_user_watches": 524288}


@dataclass(frozen=True)
class Node:
    name: str
    role: str
    address: str


@dataclass(frozen=True)
class Spec:
    """Three control planes, two workers and two monitoring hosts on a /24; the VIP is
    .100, the bridge (and this machine, where the test pager listens) .1."""
    subnet: str
    prefix: str = "hka"
    control_planes: int = 3
    workers: int = 2
    monitors: int = 2

    @property
    def net(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    @property
    def gateway(self) -> str:
        return str(self.net.network_address + 1)

    @property
    def vip(self) -> str:
        return str(self.net.network_address + 100)

    @property
    def bridge(self) -> str:
        return f"{self.prefix}br0"

    @property
    def nodes(self) -> list[Node]:
        base = self.net.network_address
        return ([Node(f"cp{i}", CONTROL_PLANE, str(base + 10 + i)) for i in range(1, self.control_planes + 1)]
                + [Node(f"w{i}", WORKER, str(base + 20 + i)) for i in range(1, self.workers + 1)]
                + [Node(f"mon{i}", MONITORING, str(base + 40 + i)) for i in range(1, self.monitors + 1)])

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise LabError(f"the kubeadm lab has no node {name!r}")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Paths:
    root: Path

    @property
    def lxc(self) -> Path:          # LXC's "lxcpath": one directory per container
        return self.root / "lxc"

    @property
    def ssh_key(self) -> Path:
        return self.root / "ssh" / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.root / "ssh" / "known_hosts"

    @property
    def sysctl(self) -> Path:
        return self.root / "sysctl"

    @property
    def spec_file(self) -> Path:
        return self.root / "spec.json"

    def node(self, name: str) -> Path:
        return self.lxc / name


def lxc_config(spec: Spec, paths: Paths, node: Node, rootfs: Path) -> str:
    d = paths.node(node.name)
    mounts = [f"lxc.mount.entry = {paths.sysctl / key.replace('/', '.')} proc/sys/{key} none bind,ro 0 0"
              for key in SPOOFED_SYSCTLS]
    return "\n".join([
        f"lxc.uts.name = {node.name}",
        "lxc.arch = amd64",
        "lxc.init.cmd = /sbin/init",
        f"lxc.rootfs.path = overlay:{rootfs}:{d / 'delta0'}",
        "lxc.signal.halt = SIGRTMIN+3",          # systemd's clean shutdown
        "lxc.signal.reboot = SIGTERM",
        # Privileged, as kubelet and containerd need: no AppArmor, every capability the
        # machine has, every device.
        "lxc.apparmor.profile = unconfined",
        "lxc.cap.drop =",
        "lxc.cgroup.devices.allow = a",
        # sys:mixed keeps networkd from waiting for udev; cgroup:rw:force mounts each v1
        # hierarchy as the machine has it (systemd's joint cpu,cpuacct mount fails here).
        "lxc.mount.auto = proc:rw sys:mixed cgroup:rw:force",
        "lxc.autodev = 1",
        "lxc.pty.max = 1024",
        "lxc.tty.max = 1",
        "lxc.cgroup.relative = 1",
        "lxc.mount.entry = /dev/kmsg dev/kmsg none bind,create=file 0 0",
        # containerd's overlayfs snapshotter cannot sit on an overlay: a plain directory.
        f"lxc.mount.entry = {d / 'containerd'} var/lib/containerd none bind,create=dir 0 0",
        *mounts,
        "lxc.net.0.type = veth",
        f"lxc.net.0.link = {spec.bridge}",
        "lxc.net.0.name = eth0",
        "lxc.net.0.flags = up",
        f"lxc.net.0.veth.pair = {spec.prefix}-{node.name}",
        f"lxc.log.file = {d / 'lxc.log'}",
        "lxc.log.level = WARN",
        ""])


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def create(spec: Spec, paths: Paths, node: Node, rootfs: Path) -> None:
    """A bare host: its own hostname, machine-id, SSH host keys and address, the lab's key
    authorized for root. Nothing else differs from the image."""
    d = paths.node(node.name)
    upper = d / "delta0"
    (d / "containerd").mkdir(parents=True, exist_ok=True)
    _write(upper / "etc/hostname", node.name + "\n")
    hosts = ["127.0.0.1 localhost", f"127.0.1.1 {node.name}"] + [f"{n.address} {n.name}" for n in spec.nodes]
    _write(upper / "etc/hosts", "\n".join(hosts) + "\n")
    _write(upper / "etc/machine-id", os.urandom(16).hex() + "\n", 0o444)
    _write(upper / "etc/resolv.conf", f"nameserver {spec.gateway}\n")
    _write(upper / "etc/systemd/network/10-eth0.network",
           f"[Match]\nName=eth0\n[Network]\nAddress={node.address}/{spec.net.prefixlen}\n"
           f"Gateway={spec.gateway}\nIPv6AcceptRA=no\n")
    keys = upper / "etc/ssh"
    keys.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-C", f"root@{node.name}",
                    "-f", str(keys / "ssh_host_ed25519_key")], check=True)
    host_key = (keys / "ssh_host_ed25519_key.pub").read_text().split()
    with paths.known_hosts.open("a") as f:
        f.write(f"{node.address} {host_key[0]} {host_key[1]}\n")
    _write(upper / "root/.ssh/authorized_keys", paths.ssh_key.with_suffix(".pub").read_text(), 0o600)
    (upper / "root/.ssh").chmod(0o700)
    _write(d / "config", lxc_config(spec, paths, node, rootfs))


def prepare(spec: Spec, paths: Paths) -> None:
    """The lab's key, the spoofed sysctl files and the bridge (multicast snooping off, so
    VRRP adverts reach every node)."""
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.ssh_key.parent.mkdir(mode=0o700, exist_ok=True)
    if not paths.ssh_key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hakit-kubeadm-lab",
                        "-f", str(paths.ssh_key)], check=True)
    if not paths.known_hosts.exists():   # each node's key is added as it is created, and kept for a restart
        paths.known_hosts.write_text("")
    for key, value in SPOOFED_SYSCTLS.items():
        _write(paths.sysctl / key.replace("/", "."), value + "\n", 0o444)
    for key, minimum in INOTIFY_MINIMUM.items():
        current = Path("/proc/sys", key)
        if int(current.read_text()) < minimum:
            current.write_text(str(minimum))
    if shutil.which("modprobe"):   # one kernel: the nodes cannot load modules (often built in)
        for module in ("overlay", "br_netfilter"):
            subprocess.run(["modprobe", module], capture_output=True)
    if sh("ip", "link", "show", spec.bridge, check=False).returncode != 0:
        sh("ip", "link", "add", spec.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{spec.gateway}/{spec.net.prefixlen}", "dev", spec.bridge)
    Path(f"/sys/class/net/{spec.bridge}/bridge/multicast_snooping").write_text("0")
    sh("ip", "link", "set", spec.bridge, "up")


def lx(paths: Paths, name: str, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """A command inside a node without SSH (the lab's own console; never into a frozen node)."""
    return subprocess.run(["lxc-attach", "-P", str(paths.lxc), "-n", name, "--", *argv],
                          capture_output=True, text=True, timeout=timeout)


def state(paths: Paths, name: str) -> str:
    out = subprocess.run(["lxc-info", "-P", str(paths.lxc), "-n", name, "-s", "-H"], capture_output=True, text=True)
    return out.stdout.strip() or "ABSENT"


def start(paths: Paths, name: str) -> None:
    if state(paths, name) != "RUNNING":
        done = subprocess.run(["lxc-start", "-P", str(paths.lxc), "-n", name, "-d"], capture_output=True, text=True)
        if done.returncode != 0:
            log = paths.node(name) / "lxc.log"
            tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
            raise LabError(f"lxc-start {name} failed: {done.stderr.strip() or ' / '.join(tail)}")


def booted(paths: Paths, name: str, timeout: float = 180) -> None:
    """Until systemd says the node is up (running, or degraded naming the failed units)."""
    def up() -> bool:
        try:
            return lx(paths, name, "systemctl", "is-system-running", timeout=10).stdout.strip() in (
                "running", "degraded")
        except subprocess.TimeoutExpired:
            return False
    wait.until(up, timeout, f"{name} to boot", interval=0.5,
               why=lambda: lx(paths, name, "systemctl", "--failed", "--no-legend", timeout=10).stdout.strip())


def stop(paths: Paths, name: str, kill: bool = False) -> None:
    """Shut a node down (systemd's clean halt), or cut its power (kill)."""
    if state(paths, name) == "FROZEN":
        subprocess.run(["lxc-unfreeze", "-P", str(paths.lxc), "-n", name], capture_output=True)
    args = ["-k"] if kill else ["-t", "30"]
    subprocess.run(["lxc-stop", "-P", str(paths.lxc), "-n", name, *args], capture_output=True)


def destroy(spec: Spec, paths: Paths) -> None:
    """Every node stopped and removed, the bridge and LXC's helper cgroups gone. Idempotent."""
    if paths.lxc.is_dir():
        for d in paths.lxc.iterdir():
            if (d / "config").exists():
                stop(paths, d.name, kill=True)
    sh("ip", "link", "delete", spec.bridge, check=False)
    # A node's mounts live in its own mount namespace and died with it; what LXC mounted
    # for the overlay on this side is below the node's directory.
    root = str(paths.root.resolve())
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        target = line.split()[4]
        if target.startswith(root + "/"):
            subprocess.run(["umount", "-l", target], capture_output=True)
    shutil.rmtree(paths.root, ignore_errors=True)
    running = subprocess.run(["lxc-ls", "--running", "-1"], capture_output=True, text=True).stdout.strip()
    if not running:   # LXC leaves an empty "lxc.pivot" cgroup in each hierarchy
        for d in Path("/sys/fs/cgroup").glob("*/**/lxc.pivot"):
            for sub in sorted(d.rglob("*"), key=lambda p: len(str(p)), reverse=True) + [d]:
                if sub.is_dir():
                    try:
                        sub.rmdir()
                    except OSError:
                        pass


def wait_ssh(paths: Paths, node: Node, timeout: float = 60) -> None:
    argv = ["ssh", "-i", str(paths.ssh_key), "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={paths.known_hosts}",
            "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=3", f"root@{node.address}", "true"]
    wait.until(lambda: subprocess.run(argv, capture_output=True).returncode == 0, timeout,
               f"sshd on {node.name} ({node.address})", interval=0.5)


def boot_all(spec: Spec, paths: Paths, rootfs: Path, progress) -> None:  # type: ignore[no-untyped-def]
    """Every node up with sshd answering: created where it is not yet, started where it is
    stopped (after `lxc-stop`, or this machine's restart: the bridge is made again too)."""
    prepare(spec, paths)
    for node in spec.nodes:
        if not (paths.node(node.name) / "config").exists():
            create(spec, paths, node, rootfs)
        start(paths, node.name)
    started = time.monotonic()
    for node in spec.nodes:
        booted(paths, node.name)
        wait_ssh(paths, node)
    progress(f"{len(spec.nodes)} nodes booted, sshd answering ({time.monotonic() - started:.0f}s)")
