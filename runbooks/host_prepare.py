"""host-prepare: make Debian/Ubuntu hosts ready for kubeadm, as the kubeadm install guide
lists it: swap off, the overlay and br_netfilter modules, the bridge and forwarding
sysctls, synchronised clocks, a container runtime (containerd with the systemd cgroup
driver, as the kubelet's), and kubeadm, kubelet, kubectl and crictl.

Kubernetes and containerd come from an offline bundle (`bundle=DIR`: bin/ and images/,
as `hakit lab up --kubeadm` builds one, or as an air-gapped site mirrors them), copied
over SSH with their checksums compared, or are expected installed already (from
pkgs.k8s.io). Debian packages (iptables, conntrack, socat, runc, CNI plugins) come from
apt. What a host says of itself decides the rest: a host that cannot lower
oom_score_adj (a container) gets containerd's restrict_oom_score_adj. Run it again at
any time: each step only changes what differs.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jinja2

from hakit.cluster import kubeadm
from hakit.errors import ConfigError, HakitError
from hakit.runbook import Context, Param, Runbook, Step

PACKAGES = ("conntrack", "iptables", "socat", "ethtool", "ebtables", "runc", "containernetworking-plugins")
PROGRAMS = ("kubeadm", "kubelet", "kubectl", "containerd", "containerd-shim-runc-v2", "ctr", "crictl")
MODULES = "overlay\nbr_netfilter\n"
SYSCTLS = {"net.bridge.bridge-nf-call-iptables": "1", "net.bridge.bridge-nf-call-ip6tables": "1",
           "net.ipv4.ip_forward": "1"}
SYSCTL_FILE = "/etc/sysctl.d/99-kubernetes.conf"
# CAP_SYS_RESOURCE is bit 24 of the bounding set: without it runc cannot lower oom_score_adj.
NO_SYS_RESOURCE = "[ $(( 0x$(awk '/^CapBnd/ {print $2}' /proc/self/status) >> 24 & 1 )) = 0 ]"
TEMPLATES = jinja2.Environment(loader=jinja2.PackageLoader("hakit", "templates/host"), keep_trailing_newline=True,
                               undefined=jinja2.StrictUndefined, autoescape=False)


def hosts(ctx: Context) -> list[str]:
    every = [h.name for h in ctx.inventory.control_plane + ctx.inventory.workers]
    if ctx.params["hosts"] == "all":
        return every
    chosen = ctx.params["hosts"].split(",")
    unknown = [h for h in chosen if h not in every]
    if unknown:
        raise ConfigError(f"hosts: {', '.join(unknown)[:80]} not in the inventory (control_plane.hosts, workers.hosts)")
    return chosen


def each(ctx: Context, act) -> list[str]:  # type: ignore[no-untyped-def]
    """act(host) on every chosen host at once (copying to five hosts one by one is slow)."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        return [line for line in pool.map(act, hosts(ctx)) if line]


def bundle(ctx: Context) -> Path | None:
    if not ctx.params["bundle"]:
        return None
    path = Path(ctx.params["bundle"]).expanduser()
    if not (path / "bin").is_dir() or not (path / "images" / "images.txt").is_file():
        raise ConfigError(f"bundle={path}: expected bin/ and images/images.txt in it")
    return path


def look(ctx: Context) -> str:
    def one(host: str) -> str:
        c = ctx.control
        os_name = c.run(host, ". /etc/os-release && echo \"$PRETTY_NAME\"").stdout.strip()
        swap = c.run(host, "swapon --noheadings --show=NAME 2>/dev/null | wc -l").stdout.strip()
        missing = [p for p in PACKAGES if c.run(host, "dpkg -s %s >/dev/null 2>&1", p).rc != 0]
        kubelet = c.run(host, "/usr/local/bin/kubelet --version 2>/dev/null || kubelet --version 2>/dev/null")
        ctx.state.setdefault("missing", {})[host] = missing
        offset, pm = ctx.control.clock_offset(host)
        return (f"{host}: {os_name}; swap devices {swap}; packages missing: {', '.join(missing) or 'none'}; "
                f"{kubelet.stdout.strip() or 'no kubelet'}; clock {offset:+.3f}±{pm:.3f} s")
    return "\n".join(each(ctx, one))


def swap_off(ctx: Context) -> str:
    def one(host: str) -> str:
        ctx.control.must(host, "turning swap off", "swapoff -a && if grep -Eq '^[^#].*\\sswap\\s' /etc/fstab; then "
                         "sed -i.hakit-prev -E 's/^([^#].*\\sswap\\s.*)$/# \\1/' /etc/fstab; fi")
        return ""
    each(ctx, one)
    return "swap off, and commented out in /etc/fstab where it was there"


def swap_is_off(ctx: Context) -> None:
    on = [h for h in hosts(ctx) if ctx.control.run(h, "swapon --noheadings --show=NAME | grep -q .").rc == 0]
    if on:
        raise HakitError(f"swap still on: {', '.join(on)}")


def kernel(ctx: Context) -> str:
    conf = "".join(f"{k} = {v}\n" for k, v in SYSCTLS.items())

    def one(host: str) -> str:
        ctx.control.write(host, "/etc/modules-load.d/k8s.conf", MODULES)
        ctx.control.run(host, "modprobe overlay; modprobe br_netfilter")   # built in, or in a container: fine
        ctx.control.must(host, "checking the kernel modules",
                         "grep -qw overlay /proc/filesystems && test -d /proc/sys/net/bridge")
        ctx.control.write(host, SYSCTL_FILE, conf)
        ctx.control.must(host, "applying the sysctls", "sysctl -q -p %s", SYSCTL_FILE)
        return ""
    each(ctx, one)
    return f"overlay and br_netfilter present; {', '.join(SYSCTLS)} = 1 (in {SYSCTL_FILE})"


def kernel_ready(ctx: Context) -> None:
    for host in hosts(ctx):
        values = ctx.control.run(host, "sysctl -n " + " ".join(SYSCTLS)).stdout.split()
        if values != ["1"] * len(SYSCTLS):
            raise HakitError(f"{host}: {', '.join(SYSCTLS)} read back as {values}")


def packages(ctx: Context) -> str:
    def one(host: str) -> str:
        missing = ctx.state["missing"].get(host, [])
        if missing:
            ctx.control.must(host, "installing packages", "DEBIAN_FRONTEND=noninteractive apt-get install -y "
                             + " ".join(["%s"] * len(missing)), *missing)
            return f"{host}: installed {', '.join(missing)}"
        return ""
    return "\n".join(each(ctx, one)) or "every host had them"


def clocks(ctx: Context) -> str:
    limit = float(ctx.params["max_clock_offset"])
    lines, bad = [], []
    for host in hosts(ctx):
        offset, pm = ctx.control.clock_offset(host)
        synced = ctx.control.run(host, "timedatectl show -p NTPSynchronized --value 2>/dev/null").stdout.strip()
        lines.append(f"{host}: {offset:+.3f}±{pm:.3f} s from this machine, NTP synchronized: {synced or 'unknown'}")
        if abs(offset) - pm > limit:
            bad.append(host)
    if bad:
        raise HakitError(f"clocks off by more than {limit} s on {', '.join(bad)}: etcd and certificates need "
                         "synchronised time (enable chrony or systemd-timesyncd there)\n" + "\n".join(lines))
    return "\n".join(lines)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def runtime(ctx: Context) -> str:
    source = bundle(ctx)
    refs = dict(line.split() for line in (source / "images" / "images.txt").read_text().splitlines()) \
        if source else {}
    pause = next((ref for ref in refs.values() if "/pause:" in ref), "registry.k8s.io/pause:3.10.2")

    def one(host: str) -> str:
        c, copied = ctx.control, []
        if source:
            for name in PROGRAMS:
                local = source / "bin" / name
                remote = f"/usr/local/bin/{name}"
                if c.run(host, "sha256sum %s 2>/dev/null", remote).stdout.split()[:1] != [sha256(local)]:
                    c.upload(host, local, remote, mode=0o755)
                    copied.append(name)
        elif c.run(host, " && ".join(f"command -v {p} >/dev/null" for p in PROGRAMS)).rc != 0:
            raise HakitError(f"{host}: kubeadm, kubelet, kubectl, containerd or crictl missing; install them "
                             "from pkgs.k8s.io, or pass bundle=DIR")
        restrict = c.run(host, NO_SYS_RESOURCE).rc == 0
        c.write(host, "/etc/containerd/config.toml",
                TEMPLATES.get_template("containerd.toml.j2").render(pause=pause, restrict_oom=restrict))
        for name, path in (("containerd.service", "/etc/systemd/system/containerd.service"),
                           ("kubelet.service", "/etc/systemd/system/kubelet.service"),
                           ("10-kubeadm.conf", "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf")):
            c.write(host, path, TEMPLATES.get_template(name).render())
        c.write(host, "/etc/crictl.yaml", "runtime-endpoint: unix:///run/containerd/containerd.sock\n"
                "image-endpoint: unix:///run/containerd/containerd.sock\ntimeout: 10\n")
        c.must(host, "starting containerd", "systemctl daemon-reload && systemctl enable -q kubelet && "
               "systemctl enable -q containerd && systemctl restart containerd")
        return (f"{host}: copied {', '.join(copied) or 'nothing (all current)'}"
                + ("; containerd restricts oom_score_adj (no CAP_SYS_RESOURCE here)" if restrict else ""))
    return "\n".join(each(ctx, one))


def runtime_answers(ctx: Context) -> None:
    for host in hosts(ctx):
        ctx.control.must(host, "asking containerd through the CRI", "crictl info >/dev/null")


def images(ctx: Context) -> str:
    source = bundle(ctx)
    if source is None:
        return "no bundle: kubeadm pulls its images from the registry"
    refs = dict(line.split() for line in (source / "images" / "images.txt").read_text().splitlines())

    def one(host: str) -> str:
        have = set(ctx.control.run(host, "ctr -n k8s.io images ls -q").stdout.split())
        todo = {f: r for f, r in refs.items() if r not in have}
        for file in todo:
            kubeadm.import_image(ctx.control, host, source / "images" / file)
        return f"{host}: imported {len(todo)} images" if todo else ""
    return "\n".join(each(ctx, one)) or "every host had every image"


def images_present(ctx: Context) -> None:
    source = bundle(ctx)
    if source is None:
        return
    refs = [line.split()[1] for line in (source / "images" / "images.txt").read_text().splitlines()]
    for host in hosts(ctx):
        have = ctx.control.run(host, "crictl images -o json").stdout
        missing = [r for r in refs if f'"{r}"' not in have]
        if missing:
            raise HakitError(f"{host}: the CRI does not list {', '.join(missing)}")


RUNBOOK = Runbook(
    installs_cluster=True,
    name="host-prepare",
    title="Prepare hosts for kubeadm: swap, kernel, time, containerd, kubelet",
    summary="The kubeadm install guide's prerequisites on every host, then containerd and the Kubernetes "
            "binaries (from an offline bundle or already installed) and the images kubeadm will ask for.",
    params=[Param("hosts", "comma-separated host names, or all (control-plane and worker hosts)", "all"),
            Param("bundle", "a local bundle directory (bin/, images/) to install from; empty: already installed",
                  ""),
            Param("max_clock_offset", "seconds a host's clock may differ from this machine's", "0.5")],
    steps=[
        Step("look", "See each host's OS, swap, packages, kubelet and clock",
             lambda ctx: "on each host: /etc/os-release; swapon --show; dpkg -s PACKAGES; kubelet --version; date",
             look, changes=False),
        Step("swap", "Turn swap off now and at boot (the kubelet refuses to start with it)",
             lambda ctx: "swapoff -a; comment out swap lines in /etc/fstab (kept as fstab.hakit-prev)",
             swap_off, verify=swap_is_off),
        Step("kernel", "Load overlay and br_netfilter; enable bridged traffic filtering and IP forwarding",
             lambda ctx: f"/etc/modules-load.d/k8s.conf; modprobe overlay br_netfilter; {SYSCTL_FILE}; sysctl -p",
             kernel, verify=kernel_ready),
        Step("packages", "Install the Debian packages kubeadm and the CNI need where missing",
             lambda ctx: "apt-get install -y " + " ".join(PACKAGES) + "  (only the missing ones)",
             packages),
        Step("time", "Check every clock agrees with this machine's (etcd leases and certificates need it)",
             lambda ctx: f"date +%s.%N on each host, bracketed; refuse beyond {ctx.params['max_clock_offset']} s",
             clocks, changes=False),
        Step("runtime", "Install containerd, kubeadm, kubelet, kubectl, crictl; systemd cgroups; start containerd",
             lambda ctx: (f"copy {', '.join(PROGRAMS)} from {ctx.params['bundle']}/bin to /usr/local/bin "
                          if ctx.params["bundle"] else "check kubeadm, kubelet, containerd are installed; ")
             + "write /etc/containerd/config.toml, the containerd and kubelet units, /etc/crictl.yaml; "
               "systemctl enable kubelet; systemctl restart containerd",
             runtime, verify=runtime_answers),
        Step("images", "Import the images kubeadm will ask for into containerd",
             lambda ctx: f"copy {ctx.params['bundle'] or '(no bundle)'}/images/*.tar; ctr -n k8s.io images import",
             images, verify=images_present),
    ],
    checks=["HOST-001", "HOST-002"],
)
