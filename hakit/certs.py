"""The certificates a control-plane host runs on: every one `kubeadm certs check-expiration`
lists (leaf certificates, the client certificates embedded in kubeconfigs, the CAs), and the
kubelet's client certificate, which it leaves out (kubernetes/kubernetes#102556: one expired
while check-expiration said all was fine). One shell loop on a host sends their CERTIFICATE
blocks, never a key; their end dates are read here."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class Cert:
    name: str        # as kubeadm names it
    path: str        # under the host's pki dir, or a kubeconfig under its kubeconfigs dir
    required: bool   # every layout hakit knows has it; the others only kubeadm writes

    @property
    def in_kubeconfig(self) -> bool:
        return self.path.endswith(".conf")


CERTS = (
    Cert("admin.conf", "admin.conf", False),
    Cert("apiserver", "apiserver.crt", True),
    Cert("apiserver-etcd-client", "apiserver-etcd-client.crt", True),
    Cert("apiserver-kubelet-client", "apiserver-kubelet-client.crt", False),
    Cert("controller-manager.conf", "controller-manager.conf", True),
    Cert("etcd-healthcheck-client", "etcd/healthcheck-client.crt", False),
    Cert("etcd-peer", "etcd/peer.crt", True),
    Cert("etcd-server", "etcd/server.crt", True),
    Cert("front-proxy-client", "front-proxy-client.crt", False),
    Cert("scheduler.conf", "scheduler.conf", True),
    Cert("super-admin.conf", "super-admin.conf", False),   # kubeadm ≥ 1.29, on the host that ran init only
    Cert("ca", "ca.crt", True),
    Cert("etcd-ca", "etcd/ca.crt", True),
    Cert("front-proxy-ca", "front-proxy-ca.crt", False),
    Cert("kubelet.conf", "kubelet.conf", True),   # the kubelet's client certificate, embedded or a file it names
)

# Arguments come in pairs (name, path), shell-quoted; a kubeconfig's certificate is embedded
# (client-certificate-data) or a file it names (client-certificate, as kubeadm's kubelet.conf
# does after rotation). Only CERTIFICATE blocks leave the host, never a key (the kubelet's
# kubelet-client-current.pem holds both); their dates are read here, not by an openssl per
# file on the host (one sed each is a tenth of the time, and a host needs no openssl).
CERT_BLOCK = "sed -n '/^-----BEGIN CERTIFICATE-----$/,/^-----END CERTIFICATE-----$/p'"
SCRIPT = """set -- {pairs}
while [ $# -gt 1 ]; do
  n=$1; p=$2; shift 2
  echo "=== $n"
  if [ ! -e "$p" ]; then echo absent; continue; fi
  case $p in
    *.conf) d=$(sed -n 's/^ *client-certificate-data: *//p' "$p")
            if [ -n "$d" ]; then echo "$d" | base64 -d 2>/dev/null | {block}
            else {block} "$(sed -n 's/^ *client-certificate: *//p' "$p")" 2>/dev/null; fi ;;
    *) {block} "$p" 2>/dev/null ;;
  esac
done"""


def script() -> str:
    """The read, as a template for ssh.run: its arguments are `arguments()`."""
    return SCRIPT.format(pairs=" ".join(["%s %s"] * len(CERTS)), block=CERT_BLOCK)


def arguments(pki: str, kubeconfigs: str) -> list[str]:
    return [a for c in CERTS for a in (c.name, f"{kubeconfigs if c.in_kubeconfig else pki}/{c.path}")]


@dataclass(frozen=True)
class Reading:
    cert: Cert
    not_after: datetime | None   # None: absent or unreadable
    absent: bool


def parse(output: str) -> list[Reading]:
    """The script's output, in CERTS' order; a certificate it printed nothing readable for
    (no PEM, a host that cut the output short) is unreadable, never absent."""
    bodies: dict[str, str] = {}
    for chunk in output.split("=== ")[1:]:
        name, _, body = chunk.partition("\n")
        bodies[name.strip()] = body
    out = []
    for c in CERTS:
        body = bodies.get(c.name, "")
        out.append(Reading(c, None, True) if body.strip() == "absent" else Reading(c, pem_not_after(body), False))
    return out


def pem_not_after(pem: str) -> datetime | None:
    """The notAfter of the first certificate in PEM text; None if there is none to read."""
    m = re.search(r"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", pem, re.S)
    try:
        return not_after(base64.b64decode("".join(m.group(1).split()), validate=True)) if m else None
    except (ValueError, IndexError):
        return None


def not_after(der: bytes) -> datetime:
    """A DER certificate's notAfter (RFC 5280: Certificate → tbsCertificate → [version],
    serialNumber, signature, issuer, validity → notBefore, notAfter)."""
    _, tbs, _ = _tlv(der, 0)
    _, at, _ = _tlv(der, tbs)
    tag, _, end = _tlv(der, at)
    if tag == 0xA0:   # the explicit version field is optional
        at = end
    for _ in range(3):   # serialNumber, signature, issuer
        at = _tlv(der, at)[2]
    _, validity, _ = _tlv(der, at)
    tag, start, end = _tlv(der, _tlv(der, validity)[2])
    text = der[start:end].decode("ascii")
    if tag == 0x17:   # UTCTime: YYMMDDHHMMSSZ, 50-99 meaning 19xx
        yy = int(text[:2])
        text = f"{1900 + yy if yy >= 50 else 2000 + yy}{text[2:]}"
    elif tag != 0x18:   # GeneralizedTime: YYYYMMDDHHMMSSZ
        raise ValueError(f"not a time: tag {tag:#x}")
    return datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=UTC)


def _tlv(der: bytes, at: int) -> tuple[int, int, int]:
    """(tag, where its value starts, where it ends) of the DER element at `at`."""
    tag, length = der[at], der[at + 1]
    at += 2
    if length & 0x80:
        n = length & 0x7F
        length, at = int.from_bytes(der[at:at + n], "big"), at + n
    if at + length > len(der):
        raise ValueError("truncated")
    return tag, at, at + length
