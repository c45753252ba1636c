#!/usr/bin/env bash
# Everything a fresh Debian machine needs for hakit and its netns lab: Debian packages,
# a virtualenv with hakit installed, and the lab's Go binaries (cached by version
# in ~/.cache/hakit/bin, so a warm run takes seconds). Idempotent.
#   setup.sh             what `make audit` runs: the netns lab alone
#   setup.sh --kubeadm   also the kubeadm lab's node side and its two Debian images
#                        (`make test`; `hakit lab up --kubeadm` builds them too, on demand)
set -euo pipefail
cd "$(dirname "$0")/.."
kubeadm=false
case "${1:-}" in
  "") ;;
  --kubeadm) kubeadm=true ;;
  *) echo "usage: setup.sh [--kubeadm]" >&2; exit 2 ;;
esac

pkgs=(keepalived haproxy prometheus prometheus-alertmanager prometheus-pushgateway openssh-server openssh-client
      iproute2 iptables curl openssl util-linux procps python3-venv faketime)
# The kubeadm lab: system containers, and the Debian image they boot.
$kubeadm && pkgs+=(lxc debootstrap)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The packages' own services are not the lab's: the lab runs its own copies in namespaces.
  for svc in keepalived haproxy prometheus prometheus-alertmanager prometheus-pushgateway ssh; do
    (command -v systemctl >/dev/null && systemctl disable --now "$svc") >/dev/null 2>&1 || true
  done
fi

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import hakit, pytest_html, testinfra, kubernetes, hypothesis' 2>/dev/null \
   || [ ! -x .venv/bin/ruff ] \
   || [ pyproject.toml -nt .venv/.installed ]; then
  echo "[setup] installing hakit and its dependencies into .venv"
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e '.[test]'
  touch .venv/.installed
fi

# sudo resets PATH (secure_path): look where Go's own installer puts it too.
[ -x /usr/local/go/bin/go ] && export PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null || { echo "[setup] Go is required to build the lab's binaries" >&2; exit 4; }
if ! $kubeadm; then
  bash hakit/lab/build/build.sh   # the netns lab's binaries
  exit 0
fi
# The Debian images (network- and disk-bound, ~5 + ~3 min cold) build while Go compiles
# (CPU-bound, ~15 min cold for the kubeadm lab's node side); each is cached by version.
bash hakit/lab/build/rootfs.sh > /tmp/hakit-rootfs.log 2>&1 & rootfs=$!
bash hakit/lab/build/pyrootfs.sh > /tmp/hakit-pyrootfs.log 2>&1 & pyrootfs=$!
bash hakit/lab/build/build.sh --kubeadm   # the netns lab's binaries, and the kubeadm lab's node side
wait $rootfs || { tail -20 /tmp/hakit-rootfs.log >&2; echo "[setup] the kubeadm lab's host image failed" >&2; exit 4; }
wait $pyrootfs || { tail -20 /tmp/hakit-pyrootfs.log >&2; echo "[setup] hakit's image base failed" >&2; exit 4; }
