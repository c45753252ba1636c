#!/usr/bin/env bash
# The base of hakit's own container image (the in-cluster CronJob's): a minimal Debian
# with Python, venv and an SSH client, as the Dockerfile's python:3.11-slim would give,
# built with debootstrap because no registry is reachable here. Cached by suite and
# package list outside the repo.   pyrootfs.sh [--print-dir]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${HAKIT_CACHE:-$HOME/.cache/hakit}
PKGS=python3,python3-venv,openssh-client,ca-certificates
key=$(printf '%s\n' "$DEBIAN_SUITE" "$PKGS" | sha256sum | cut -c1-12)
root=$cache/rootfs/python-$DEBIAN_SUITE-$key
if [ ! -f "$root/.complete" ]; then
  command -v debootstrap >/dev/null || { echo "[pyrootfs] debootstrap is required" >&2; exit 4; }
  echo "[pyrootfs] debian $DEBIAN_SUITE with python3 (~3 min cold) -> $root" >&2
  rm -rf "$root"; mkdir -p "$(dirname "$root")"
  debootstrap --variant=minbase --include="$PKGS" "$DEBIAN_SUITE" "$root" http://deb.debian.org/debian >&2
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  touch "$root/.complete"
fi
[ "${1:-}" = "--print-dir" ] && echo "$root"
exit 0
