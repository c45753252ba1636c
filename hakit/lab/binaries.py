"""Where the lab's programs come from, and what is missing (`hakit lab doctor`)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

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
    return Path(os.environ.get("HAKIT_CACHE", Path.home() / ".cache" / "hakit")) / "bin"


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
