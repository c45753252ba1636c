"""A kubeadm-shaped PKI made with the openssl CLI: CAs, serving and client
certificates, service-account keys, and kubeconfigs that embed them."""

from __future__ import annotations

import base64
import ipaddress
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from hakit.errors import LabError

_MIN_CONFIG = "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n"


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path


def _openssl(*args: str) -> None:
    proc = subprocess.run(["openssl", *args], capture_output=True, text=True)
    if proc.returncode:
        raise LabError(f"openssl {args[0]} failed: {proc.stderr.strip().splitlines()[-1:]}")


def _config(directory: Path) -> Path:
    path = directory / ".openssl.cnf"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        path.write_text(_MIN_CONFIG)
    return path


def make_ca(directory: Path, name: str, common_name: str, days: int = 3650) -> CertPair:
    pair = CertPair(directory / f"{name}.crt", directory / f"{name}.key")
    _openssl("req", "-x509", "-config", str(_config(directory)), "-newkey", "ec",
             "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(pair.key), "-out", str(pair.cert), "-days", str(days),
             "-subj", f"/CN={common_name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign")
    os.chmod(pair.key, 0o600)
    return pair


def issue(ca: CertPair, directory: Path, name: str, common_name: str, *,
          orgs: tuple[str, ...] = (), sans: tuple[str, ...] = (),
          server: bool = False, client: bool = False, days: int = 365) -> CertPair:
    """Issue a leaf certificate signed by ``ca``; ``sans`` holds IPs and DNS names."""
    directory.mkdir(parents=True, exist_ok=True)
    pair = CertPair(directory / f"{name}.crt", directory / f"{name}.key")
    subject = "".join(f"/O={o}" for o in orgs) + f"/CN={common_name}"
    usages = ",".join(u for u, on in (("serverAuth", server), ("clientAuth", client)) if on)
    args = ["req", "-x509", "-config", str(_config(directory)), "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(pair.key), "-out", str(pair.cert), "-days", str(days),
            "-subj", subject, "-CA", str(ca.cert), "-CAkey", str(ca.key),
            "-addext", "basicConstraints=critical,CA:FALSE",
            "-addext", "keyUsage=critical,digitalSignature,keyEncipherment",
            "-addext", f"extendedKeyUsage={usages}"]
    if sans:
        alt = ",".join(("IP:" if _is_ip(s) else "DNS:") + s for s in sans)
        args += ["-addext", f"subjectAltName={alt}"]
    _openssl(*args)
    os.chmod(pair.key, 0o600)
    return pair


def make_keypair(directory: Path, name: str) -> tuple[Path, Path]:
    """A service-account signing key pair (sa.key / sa.pub), as kubeadm makes it."""
    key, pub = directory / f"{name}.key", directory / f"{name}.pub"
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key))
    _openssl("pkey", "-in", str(key), "-pubout", "-out", str(pub))
    os.chmod(key, 0o600)
    return key, pub


def write_kubeconfig(path: Path, server: str, ca: Path, user: CertPair, user_name: str,
                     cluster: str = "hakit-lab") -> Path:
    """A kubeconfig with embedded credentials, readable only by its owner."""
    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    context = f"{user_name}@{cluster}"
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": cluster, "cluster": {"server": server, "certificate-authority-data": b64(ca)}}],
        "users": [{"name": user_name, "user": {"client-certificate-data": b64(user.cert),
                                                "client-key-data": b64(user.key)}}],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user_name}}],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False)
    return path


def _is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
    except ValueError:
        return False
    return True
