"""Where the lab's programs come from, and what is missing (`hakit lab doctor`)."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from hakit import paths

BUILD_SCRIPT = Path(__file__).parent / "build" / "build.sh"
APT_PACKAGES = ("keepalived", "haproxy", "prometheus", "prometheus-alertmanager", "prometheus-pushgateway",
                "openssh-server", "openssh-client", "iproute2", "iptables", "curl", "openssl")


def _pins() -> dict[str, str]:
    pins = {}
    for line in (BUILD_SCRIPT.parent / "versions.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            pins[key.strip()] = value.strip()
    return pins


def cache_dir() -> Path:
    return paths.cache_dir() / "bin"


def _built(component: str, pin: str) -> Path:
    return cache_dir() / f"{component}-{_pins()[pin]}"


# program -> (where it is, how to get it)
def _locations() -> dict[str, tuple[Path | None, str]]:
    build = f"{BUILD_SCRIPT}"
    k8s = _built("kubernetes", "KUBERNETES_VERSION")
    etcd = _built("etcd", "ETCD_VERSION")
    locs: dict[str, tuple[Path | None, str]] = {
        name: (k8s / name, build) for name in ("kube-apiserver", "kube-controller-manager",
                                               "kube-scheduler", "kubectl")}
    locs.update({name: (etcd / name, build) for name in ("etcd", "etcdctl", "etcdutl")})
    locs["kwok"] = (_built("kwok", "KWOK_VERSION") / "kwok", build)
    locs["kube-state-metrics"] = (_built("kube-state-metrics", "KSM_VERSION") / "kube-state-metrics", build)
    for prog, pkg in (("keepalived", "keepalived"), ("haproxy", "haproxy"), ("prometheus", "prometheus"),
                      ("promtool", "prometheus"), ("prometheus-alertmanager", "prometheus-alertmanager"),
                      ("prometheus-pushgateway", "prometheus-pushgateway"),
                      ("sshd", "openssh-server"), ("ssh", "openssh-client"), ("ssh-keygen", "openssh-client"),
                      ("iptables", "iptables"), ("curl", "curl"), ("openssl", "openssl"), ("ip", "iproute2")):
        found = shutil.which(prog) or (f"/usr/sbin/{prog}" if Path(f"/usr/sbin/{prog}").exists() else None)
        locs[prog] = (Path(found) if found else None, f"apt-get install -y {pkg}")
    return locs


@dataclass(frozen=True)
class Missing:
    program: str
    fix: str


def missing() -> list[Missing]:
    """Every program the lab needs that is not there, with the command that installs it."""
    out = [Missing(prog, fix) for prog, (path, fix) in _locations().items()
           if path is None or not path.exists()]
    if os.geteuid() != 0:
        out.insert(0, Missing("root", "run as root: the lab creates network namespaces"))
    return out


def path(program: str) -> str:
    """Absolute path of a program the lab runs; KeyError names unknown ones."""
    location, _ = _locations()[program]
    return str(location) if location else program


def kubernetes_version() -> str:
    return _pins()["KUBERNETES_VERSION"]


def kwok_stages() -> Path:
    return _built("kwok", "KWOK_VERSION") / "stages"


def bin_dirs() -> list[Path]:
    """Directories to put on PATH so kubectl and etcdctl match the lab's versions."""
    return [_built("kubernetes", "KUBERNETES_VERSION"), _built("etcd", "ETCD_VERSION")]


# --- the kubeadm lab (build.sh --kubeadm) ---

PIN_OF = {"kubernetes": "KUBERNETES_VERSION", "kubernetes-node": "KUBERNETES_VERSION", "etcd": "ETCD_VERSION",
          "containerd": "CONTAINERD_VERSION", "crictl": "CRICTL_VERSION", "coredns": "COREDNS_VERSION"}


def versions() -> dict[str, str]:
    return _pins()


def component_dir(component: str) -> Path:
    """A built component's directory in the cache, e.g. containerd-v2.4.2."""
    return _built(component, PIN_OF[component])


def node_dir() -> Path:
    return component_dir("kubernetes-node")


def pause() -> Path:
    """The pause binary (its cache key is its source's hash: it has no upstream version)."""
    source = (BUILD_SCRIPT.parent / "pause" / "main.go").read_bytes()
    return cache_dir() / f"pause-{hashlib.sha256(source).hexdigest()[:12]}" / "pause"


def build_kubeadm_lab() -> Path:
    """Build (or find cached) the kubeadm lab's node binaries and host image; the image's path."""
    import subprocess  # here: `hakit.lab.ctl` imports this module and must start fast
    env = {**os.environ, "PATH": f"/usr/local/go/bin:{os.environ.get('PATH', '')}"}
    for script, args in (("build.sh", ["--kubeadm"]), ("rootfs.sh", ["--print-dir"])):
        done = subprocess.run(["bash", str(BUILD_SCRIPT.parent / script), *args], env=env, stdout=subprocess.PIPE,
                              text=True)
        if done.returncode != 0:
            from hakit.errors import LabError
            raise LabError(f"{script} {' '.join(args)} failed (exit {done.returncode}); its output is above")
    return Path(done.stdout.strip().splitlines()[-1])
