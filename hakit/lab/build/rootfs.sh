#!/usr/bin/env bash
# The kubeadm lab's host image: a Debian root filesystem with systemd and sshd, as a
# cloud provider would hand out, plus the Debian packages a kubeadm host installs
# with apt (the lab's nodes have no route to a mirror, so they are in the image;
# hakit's host-prepare runbook still checks them). Nothing Kubernetes is in it:
# the runbooks install that. Cached by suite and package list outside the repo.
#   rootfs.sh [--print-dir]     HAKIT_CACHE overrides ~/.cache/hakit
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${HAKIT_CACHE:-$HOME/.cache/hakit}

# What a bare host has (systemd, sshd, networkd) and what host-prepare installs.
BASE_PKGS=systemd,systemd-sysv,dbus,openssh-server,iproute2,iputils-ping,ca-certificates,curl,procps,kmod,less,python3
HOST_PKGS=conntrack,iptables,socat,ethtool,ebtables,runc,containernetworking-plugins,keepalived,haproxy
MON_PKGS=prometheus,prometheus-alertmanager   # what provision-monitoring installs on the monitoring hosts
key=$(printf '%s\n' "$DEBIAN_SUITE" "$BASE_PKGS" "$HOST_PKGS" "$MON_PKGS" "$(sed -n '/^# image:/,$p' "$0")" \
      | sha256sum | cut -c1-12)
root=$cache/rootfs/debian-$DEBIAN_SUITE-$key
if [ -f "$root/.complete" ]; then
  [ "${1:-}" = "--print-dir" ] && echo "$root"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "[rootfs] debootstrap is required (apt-get install debootstrap)" >&2; exit 4; }
echo "[rootfs] debian $DEBIAN_SUITE host image (~5 min cold) -> $root" >&2
rm -rf "$root"; mkdir -p "$(dirname "$root")"
debootstrap --variant=minbase --include="$BASE_PKGS,$HOST_PKGS,$MON_PKGS" "$DEBIAN_SUITE" "$root" http://deb.debian.org/debian >&2

# image: what makes a Debian tree boot as a system container sharing the machine's kernel
# (everything below is part of the cache key).
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/boot/* "$root"/usr/lib/modules/*
: > "$root/etc/fstab"
: > "$root/etc/machine-id"; rm -f "$root/var/lib/dbus/machine-id"
rm -f "$root"/etc/ssh/ssh_host_*               # each node gets its own at creation
printf 'UseDNS no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n' > "$root/etc/ssh/sshd_config.d/hakit-lab.conf"
# Units that would act on the shared kernel from a privileged container.
for u in systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
         systemd-udev-trigger.service systemd-udev-settle.service systemd-timesyncd.service \
         systemd-binfmt.service proc-sys-fs-binfmt_misc.automount systemd-pstore.service \
         systemd-modules-load.service getty@tty1.service systemd-networkd-wait-online.service \
         e2scrub_all.timer fstrim.timer dpkg-db-backup.timer apt-daily.timer apt-daily-upgrade.timer; do
  ln -sf /dev/null "$root/etc/systemd/system/$u"
done
# sysctl.d files setting global (not per-namespace) keys: the machine's values stay.
for f in 50-pid-max.conf 99-protect-links.conf; do ln -sf /dev/null "$root/etc/sysctl.d/$f"; done
# The distribution's services start when the provisioning runbooks say so.
chroot "$root" systemctl disable keepalived haproxy prometheus prometheus-alertmanager >/dev/null 2>&1 || true
chroot "$root" systemctl enable systemd-networkd ssh >/dev/null 2>&1
rm -f "$root/etc/resolv.conf"; : > "$root/etc/resolv.conf"
touch "$root/.complete"
[ "${1:-}" = "--print-dir" ] && echo "$root"
exit 0
