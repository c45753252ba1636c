"""Where hakit keeps things on the machine it runs on: its state (labs, journals) and its
binary cache. The lowest layer: the lab, the clients and the CLI all read these, so none
of them has to import another to find a directory.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from hakit.errors import ConfigError


def state_dir() -> Path:
    """$XDG_STATE_HOME/hakit (default ~/.local/state/hakit)."""
    return Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "hakit"


def cache_dir() -> Path:
    """$HAKIT_CACHE (default ~/.cache/hakit): built binaries and images, keyed by version."""
    return Path(os.environ.get("HAKIT_CACHE", Path.home() / ".cache" / "hakit"))


def lab_dir() -> Path:
    """The local netns lab's directory: $HAKIT_LAB_DIR, else under state_dir()."""
    return Path(os.environ.get("HAKIT_LAB_DIR") or state_dir() / "lab")


def kubeadm_lab_dir() -> Path:
    """The kubeadm lab's directory: $HAKIT_KUBEADM_LAB_DIR, else under state_dir()."""
    return Path(os.environ.get("HAKIT_KUBEADM_LAB_DIR") or state_dir() / "kubeadm-lab")


def program(name: str) -> str:
    """A program (etcdctl, etcdutl, kubectl) on PATH, else the newest build of it in the binary
    cache (`hakit lab` builds them there), so a runbook works where the lab was built."""
    built = sorted((cache_dir() / "bin").glob(f"*/{name}"), key=lambda p: p.stat().st_mtime, reverse=True)
    found = shutil.which(name) or next((str(p) for p in built), None)
    if not found:
        raise ConfigError(f"{name} is not on PATH (nor in {cache_dir() / 'bin'}): install it where hakit runs")
    return found
