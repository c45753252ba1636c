"""The offline install bundle: what host-prepare installs on a kubeadm host that cannot
reach a package repository or a registry (the kubeadm lab's hosts, an air-gapped site).

    bundle/
      bin/       kubeadm kubelet kubectl containerd containerd-shim-runc-v2 ctr crictl
      images/    one OCI archive per image kubeadm asks for (`ctr images import`-able),
                 and images.txt: `file ref` per line
      VERSIONS   what is inside, one `name version` per line

The images are built here as one-layer OCI archives of the binaries built from their Go
modules (no registry is reachable); kube-proxy's also carries the rootfs's iptables and
conntrack with the libraries they load, as the upstream image does.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from hakit.errors import LabError
from hakit.lab import binaries

BIN = ("kubeadm", "kubelet", "kubectl", "containerd", "containerd-shim-runc-v2", "ctr", "crictl")
KUBE_PROXY_TOOLS = ("/usr/sbin/xtables-nft-multi", "/usr/sbin/xtables-legacy-multi", "/usr/sbin/conntrack")
IPTABLES_LINKS = ("iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore")
LIBDIR = "/usr/lib/x86_64-linux-gnu"


@dataclass
class Layer:
    """The files of a one-layer image: destination path -> source file, plus symlinks."""
    files: dict[str, Path] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    dirs: tuple[str, ...] = ("tmp", "var/run", "etc")
    tree: Path | None = None     # a whole root filesystem, as it is (hakit's own image)

    def tar(self) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
            if self.tree is not None:
                for entry in sorted(self.tree.iterdir()):
                    t.add(str(entry), arcname=entry.name, filter=_root_owned)
            made: set[str] = set()

            def parents(path: str) -> None:
                parts = path.strip("/").split("/")
                for i in range(1, len(parts)):
                    d = "/".join(parts[:i])
                    if d not in made:
                        made.add(d)
                        info = tarfile.TarInfo(d)
                        info.type, info.mode = tarfile.DIRTYPE, 0o755
                        t.addfile(info)
            for d in self.dirs:
                parents(d + "/x")
            for dest, src in sorted(self.files.items()):
                parents(dest)
                info = t.gettarinfo(str(src), dest.strip("/"))
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                with src.open("rb") as f:
                    t.addfile(info, f)
            for dest, target in sorted(self.links.items()):
                parents(dest)
                info = tarfile.TarInfo(dest.strip("/"))
                info.type, info.linkname = tarfile.SYMTYPE, target
                t.addfile(info)
        return buf.getvalue()


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    if info.isdev():
        return None   # device nodes are the runtime's to make
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_image(out: Path, ref: str, layer: Layer, entrypoint: list[str] | None = None,
                env: tuple[str, ...] = ()) -> None:
    """A single-layer linux/amd64 OCI archive that `ctr images import` names `ref`."""
    blobs: dict[str, bytes] = {}

    def blob(data: bytes) -> tuple[str, int]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return digest, len(data)
    data = layer.tar()
    layer_digest, layer_size = blob(data)
    config = {"architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z",
              "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", *env],
                         **({"Entrypoint": entrypoint} if entrypoint else {})},
              "rootfs": {"type": "layers", "diff_ids": [layer_digest]}}
    config_digest, config_size = blob(json.dumps(config).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                           "size": config_size},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest,
                            "size": layer_size}]}
    manifest_digest, manifest_size = blob(json.dumps(manifest).encode())
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": manifest["mediaType"], "digest": manifest_digest, "size": manifest_size,
                            "platform": {"architecture": "amd64", "os": "linux"},
                            "annotations": {"io.containerd.image.name": ref,
                                            "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[1]}}]}
    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, "w") as t:
        for name, content in [*((f"blobs/sha256/{d[7:]}", b) for d, b in blobs.items()),
                              ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                              ("index.json", json.dumps(index).encode())]:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            t.addfile(info, io.BytesIO(content))
    os.replace(tmp, out)


def shared_libraries(rootfs: Path, programs: list[str]) -> set[str]:
    """Every library the programs load, by path inside the rootfs (ldd run in it)."""
    libs: set[str] = set()
    for program in programs:
        out = subprocess.run(["chroot", str(rootfs), "ldd", program], capture_output=True, text=True).stdout
        libs.update(m for m in re.findall(r"(/\S+\.so[.\d]*)", out))
    return libs


def kube_proxy_layer(rootfs: Path, kube_proxy: Path) -> Layer:
    """kube-proxy with iptables (nft and legacy) and conntrack from the Debian rootfs."""
    extensions = sorted(str(p.relative_to(rootfs)) for p in (rootfs / LIBDIR.lstrip("/") / "xtables").glob("*.so"))
    programs = list(KUBE_PROXY_TOOLS) + ["/" + e for e in extensions]
    layer = Layer(files={"usr/local/bin/kube-proxy": kube_proxy})
    for path in set(programs) | shared_libraries(rootfs, programs):
        src = rootfs / path.lstrip("/")
        layer.files[path.lstrip("/")] = src.resolve() if src.is_symlink() else src
    for name in IPTABLES_LINKS:
        layer.links[f"usr/sbin/{name}"] = "xtables-nft-multi"
    return layer


def image_refs(kubeadm: Path, version: str) -> dict[str, str]:
    """The images kubeadm will ask containerd for, by short name (kube-apiserver, etcd, ...)."""
    out = subprocess.run([str(kubeadm), "config", "images", "list", "--kubernetes-version", version],
                         capture_output=True, text=True, check=True).stdout.split()
    return {ref.rsplit("/", 1)[1].split(":")[0]: ref for ref in out}


def build(dest: Path, rootfs: Path) -> Path:
    """Write the bundle to dest (kept when its VERSIONS says it is current)."""
    v = binaries.versions()
    node, k8s = binaries.node_dir(), binaries.component_dir("kubernetes")
    versions = "".join(f"{k} {v[k]}\n" for k in sorted(v)) + f"rootfs {rootfs.name}\n"
    if (dest / "VERSIONS").is_file() and (dest / "VERSIONS").read_text() == versions:
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    (dest / "bin").mkdir(parents=True)
    (dest / "images").mkdir()
    sources = {"kubeadm": node, "kubelet": node, "kubectl": k8s, "crictl": binaries.component_dir("crictl")}
    for name in BIN:
        src = sources.get(name, binaries.component_dir("containerd")) / name
        if not src.is_file():
            raise LabError(f"{src} is missing: run `bash hakit/lab/build/build.sh --kubeadm`")
        shutil.copy2(src, dest / "bin" / name)
    refs = image_refs(node / "kubeadm", v["KUBERNETES_VERSION"])
    etcd = binaries.component_dir("etcd")
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        write_image(dest / "images" / f"{name}.tar", refs[name],
                    Layer(files={f"usr/local/bin/{name}": k8s / name}))
    write_image(dest / "images" / "etcd.tar", refs["etcd"],
                Layer(files={f"usr/local/bin/{n}": etcd / n for n in ("etcd", "etcdctl", "etcdutl")},
                      dirs=("tmp", "var/run", "etc", "var/lib/etcd")))
    write_image(dest / "images" / "pause.tar", refs["pause"], Layer(files={"pause": binaries.pause()}),
                entrypoint=["/pause"])
    write_image(dest / "images" / "kube-proxy.tar", refs["kube-proxy"], kube_proxy_layer(rootfs, node / "kube-proxy"))
    write_image(dest / "images" / "coredns.tar", refs["coredns"],
                Layer(files={"coredns": binaries.component_dir("coredns") / "coredns"}), entrypoint=["/coredns"])
    (dest / "images" / "images.txt").write_text("".join(
        f"{name}.tar {ref}\n" for name, ref in sorted(refs.items())
        if (dest / "images" / f"{name}.tar").exists()))
    (dest / "VERSIONS").write_text(versions)
    return dest


HAKIT_IMAGE = "hakit.local/hakit"


def hakit_image(dest_dir: Path, base: Path, source: Path) -> tuple[Path, str]:
    """hakit's own image, as the Dockerfile builds it (the wheel installed into a venv,
    nothing of the source tree kept, HOME=/tmp for a read-only root), from a debootstrapped
    Python base. Cached by the wheel's checksum: (archive, reference)."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        wheels = Path(tmp) / "wheels"   # hakit and every dependency, fetched here: the build needs no network
        got = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "-w", str(wheels), str(source)],
                             capture_output=True, text=True)
        if got.returncode != 0:
            raise LabError(f"pip wheel {source} failed: {got.stderr.strip()[-300:]}")
        wheel = next(wheels.glob("hakit-*.whl"))
        with zipfile.ZipFile(wheel) as z:   # RECORD: each file's checksum; the zip's dates differ per build
            record = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/RECORD")))
        digest = hashlib.sha256(record + base.name.encode()).hexdigest()[:12]
        ref = f"{HAKIT_IMAGE}:{digest}"
        out = dest_dir / f"hakit-{digest}.tar"
        if out.exists():
            return out, ref
        root = Path(tmp) / "root"
        subprocess.run(["cp", "-a", str(base), str(root)], check=True)
        shutil.copytree(wheels, root / "tmp" / "wheels")
        script = ("python3 -m venv /opt/hakit && /opt/hakit/bin/pip install -q --no-cache-dir --no-index "
                  f"--find-links /tmp/wheels /tmp/wheels/{wheel.name} && ln -sf /opt/hakit/bin/hakit "
                  "/usr/local/bin/hakit && rm -rf /tmp/wheels"
                  " && /opt/hakit/bin/python -c 'import hakit.cli, hakit.checks'"
                  # the CronJob's user: ssh refuses to run for a uid without a passwd entry
                  " && echo 'hakit:x:65532:65532:hakit:/tmp:/usr/sbin/nologin' >> /etc/passwd"
                  " && echo 'hakit:x:65532:' >> /etc/group")
        done = subprocess.run(["chroot", str(root), "sh", "-c", script], capture_output=True, text=True)
        if done.returncode != 0:
            raise LabError(f"building hakit's image failed: {done.stderr.strip()[-300:]}")
        (root / ".complete").unlink(missing_ok=True)
        dest_dir.mkdir(parents=True, exist_ok=True)
        write_image(out, ref, Layer(tree=root), entrypoint=["hakit"],
                    env=("HOME=/tmp", "PYTHONDONTWRITEBYTECODE=1"))
    return out, ref
