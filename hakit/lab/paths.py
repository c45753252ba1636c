"""Where the lab keeps its state: one directory, laid out like the hosts it fakes.

Each host gets ``hosts/NAME/`` holding what a kubeadm host keeps in
/etc/kubernetes, /etc/keepalived, /etc/haproxy and /var/lib/etcd.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LabPaths:
    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def pki(self) -> Path:
        """The cluster's CAs (kubeadm keeps them on every control-plane host)."""
        return self.root / "pki"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.root / "admin.conf"

    @property
    def inventory(self) -> Path:
        return self.root / "inventory.yaml"

    @property
    def ssh_key(self) -> Path:
        return self.root / "ssh" / "id_ed25519"

    @property
    def ssh_config(self) -> Path:
        return self.root / "ssh" / "config"

    @property
    def pager_file(self) -> Path:
        """Every notification the lab's webhook receiver got, one JSON per line."""
        return self.host("mon") / "pager.jsonl"

    @property
    def backups(self) -> Path:
        return self.root / "backups"

    def host(self, name: str) -> Path:
        return self.root / "hosts" / name

    def kubernetes(self, host: str) -> Path:
        """The host's /etc/kubernetes."""
        return self.host(host) / "etc" / "kubernetes"

    def host_pki(self, host: str) -> Path:
        return self.kubernetes(host) / "pki"

    def etc(self, host: str, *parts: str) -> Path:
        return self.host(host).joinpath("etc", *parts)

    def etcd_data(self, host: str) -> Path:
        return self.host(host) / "var" / "lib" / "etcd"

    def log(self, host: str, component: str) -> Path:
        return self.host(host) / "log" / f"{component}.log"

    def run(self, host: str) -> Path:
        """The host's /run: pid files and sockets."""
        return self.host(host) / "run"
