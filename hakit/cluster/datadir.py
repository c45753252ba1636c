"""etcd's data dir on a host, changed the way production disks allow.

The data dir is usually a mount point of its own (a dedicated disk), where
`mv /var/lib/etcd elsewhere` fails with EBUSY. So hakit never moves the data dir
itself: it moves the `member/` directory inside it, within the same filesystem
(a rename: instant, atomic, no copy), into a kept directory beside it in the data
dir. Each script takes its paths as quoted arguments (`%s`), never pasted in.
"""

from __future__ import annotations

import time

from hakit.cluster.components import MANIFESTS, PARKED

RESTORED = ".hakit-restored"           # etcdutl restores here, inside the data dir
SNAPSHOT = ".hakit-restore.db"         # where a restore's snapshot copy lives on the host (0600)


def aside(data_dir: str, why: str) -> str:
    """A kept place for the old member/, inside the data dir (same filesystem)."""
    return f"{data_dir}/.hakit-{why}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"


# data dir, aside dir. Repeatable: a second run finds member/ gone and says so.
SET_ASIDE = ('d=%s; a=%s; if [ -e "$d/member" ]; then mkdir -p -m 700 -- "$a" && mv -- "$d/member" "$a/" '
             '&& echo "moved $d/member to $a/"; else echo "$d/member is gone already: nothing to move"; fi')

# data dir, restored dir, aside dir, snapshot copy. Idempotent: once the restored member/
# is in place a second run changes nothing; the snapshot's copy goes either way.
SWAP_IN_RESTORED = ('d=%s; r=%s; a=%s; s=%s; if [ -e "$r/member" ]; then mkdir -p -m 700 -- "$a" && '
                    '{ [ ! -e "$d/member" ] || mv -- "$d/member" "$a/"; } && mv -- "$r/member" "$d/member" && '
                    'rmdir -- "$r"; fi && rm -f -- "$s"')

# directory: its filesystem's free bytes.
FREE_BYTES = 'd=%s; mkdir -p -- "$d" && df -P -B1 -- "$d" | awk \'NR==2 {print $4}\''


def space_needed(snapshot_bytes: int) -> int:
    """A restore writes the snapshot's copy, then a db of about its size, plus a WAL segment
    (64 MiB) and room to breathe."""
    return 2 * snapshot_bytes + 128 * 1024**2


# etcdutl on a kubeadm host, which has none of its own: etcd's image carries it (the
# upstream image and the lab's alike). The image is the one etcd's static pod names, its
# manifest in place or parked; containerd runs etcdutl from it with only the data dir bound.
ETCD_IMAGE = f"sed -n 's/^ *image: *//p' -- {MANIFESTS}/etcd.yaml {PARKED}/etcd.yaml 2>/dev/null | head -n1"
IN_IMAGE = "ctr -n k8s.io run --rm --mount %s %s %s etcdutl"   # mount, image, container id


def etcdutl(program: str, image: str, data_dir: str) -> tuple[str, tuple[str, ...]]:
    """How to start etcdutl on a host, as a command template and its arguments: the host's
    own program, or (image given) etcdutl inside etcd's image with the data dir bound in."""
    if not image:
        return "%s", (program,)
    return IN_IMAGE, (f"type=bind,src={data_dir},dst={data_dir},options=rbind:rw", image,
                      f"hakit-etcdutl-{time.time_ns()}")
