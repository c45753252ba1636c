"""Files on a host: read, replace whole, copy to and from, never readable by others in
between (a secret or a snapshot never travels on a command line)."""

from __future__ import annotations

import base64
import os
import subprocess
import tempfile
from pathlib import Path

from hakit.cluster import ssh
from hakit.cluster.access import Access
from hakit.errors import HakitError


class Files(Access):
    def read(self, host: str, path: str) -> str:
        result = self.run(host, "cat -- %s", path)
        if result.rc != 0:
            raise HakitError(f"host {host}: cannot read {path}: {result.stderr.strip()[:160]}")
        return result.stdout

    def write(self, host: str, path: str, text: str, mode: int = 0o644) -> None:
        """Replace a file on the host whole: created with its mode beside it (never readable
        by others in between), then renamed over it."""
        data = base64.b64encode(text.encode()).decode()
        self.must(host, f"writing {path}",
                  "mkdir -p -- \"$(dirname -- %s)\" && (umask 077; echo %s | base64 -d > %s) && chmod %s %s"
                  " && mv -- %s %s",
                  path, data, path + ".hakit-new", f"{mode:o}", path + ".hakit-new", path + ".hakit-new", path)

    def upload(self, host: str, local: Path | bytes, remote: str, mode: int = 0o600) -> None:
        """Copy a file (a snapshot: too big for a command line) or bytes (a secret: never on a
        command line) to the host through ssh's stdin, readable by its owner only until
        chmod, then renamed into place."""
        self.host(host)   # resolves a node's address
        staging = remote + ".hakit-new"
        if self.inv.ansible_inventory:
            self._ansible_copy(host, local, staging, mode)
        else:
            command = ssh.quote("mkdir -p -- \"$(dirname -- %s)\" && umask 077 && cat > %s && chmod %s %s",
                                staging, staging, f"{mode:o}", staging)
            argv = ssh.ssh_argv(self.inv.ssh, self.addresses[host], command)  # type: ignore[arg-type]
            if isinstance(local, bytes):
                done = subprocess.run(argv, input=local, capture_output=True, timeout=600)
            else:
                with local.open("rb") as f:
                    done = subprocess.run(argv, stdin=f, capture_output=True, timeout=600)
            if done.returncode != 0:
                raise HakitError(f"copying to {host}:{remote} failed: "
                                 f"{done.stderr.decode(errors='replace').strip()[:200]}")
        self.must(host, f"placing {remote}", "mv -- %s %s", staging, remote)

    def _ansible_copy(self, host: str, local: Path | bytes, dest: str, mode: int) -> None:
        if isinstance(local, Path):
            self._hosts[host].ansible("copy", f"src={local} dest={dest} mode={mode:o}", check=False)
            return
        with tempfile.TemporaryDirectory() as d:   # 0700: the bytes are a secret
            path = Path(d) / "content"
            path.write_bytes(local)
            self._hosts[host].ansible("copy", f"src={path} dest={dest} mode={mode:o}", check=False)

    def download(self, host: str, remote: str, local: Path) -> None:
        """Copy a file from the host (a kubeconfig, a client key) into a file only this user
        can read, in a directory only this user can enter, renamed into place whole."""
        text = self.read(host, remote)
        local.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        staging = local.with_name(f".{local.name}.hakit-new")
        staging.unlink(missing_ok=True)
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(staging, local)
