"""The certificates a control-plane host runs on: every one `kubeadm certs check-expiration`
lists (leaf certificates, the client certificates embedded in kubeconfigs, the CAs), and the
kubelet's client certificate, which it leaves out (kubernetes/kubernetes#102556: one expired
while check-expiration said all was fine). One shell loop reads every end date on a host;
no key is ever read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hakit.hosts import parse_enddate


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
# does after rotation). Each line: "NAME notAfter=...", "NAME absent" or "NAME unreadable".
SCRIPT = """set -- {pairs}
while [ $# -gt 1 ]; do
  n=$1; p=$2; shift 2
  if [ ! -e "$p" ]; then echo "$n absent"; continue; fi
  case $p in
    *.conf) d=$(sed -n 's/^ *client-certificate-data: *//p' "$p" | head -n 1)
            if [ -n "$d" ]; then e=$(echo "$d" | base64 -d 2>/dev/null | openssl x509 -enddate -noout 2>/dev/null)
            else f=$(sed -n 's/^ *client-certificate: *//p' "$p" | head -n 1)
                 e=$(openssl x509 -enddate -noout -in "$f" 2>/dev/null); fi ;;
    *) e=$(openssl x509 -enddate -noout -in "$p" 2>/dev/null) ;;
  esac
  echo "$n ${{e:-unreadable}}"
done"""


def script() -> str:
    """The read, as a template for ssh.run: its arguments are `arguments()`."""
    return SCRIPT.format(pairs=" ".join(["%s %s"] * len(CERTS)))


def arguments(pki: str, kubeconfigs: str) -> list[str]:
    return [a for c in CERTS for a in (c.name, f"{kubeconfigs if c.in_kubeconfig else pki}/{c.path}")]


@dataclass(frozen=True)
class Reading:
    cert: Cert
    not_after: datetime | None   # None: absent or unreadable
    absent: bool


def parse(output: str) -> list[Reading]:
    """The script's lines, in CERTS' order; a certificate it printed nothing for (a host that
    cut the output short) is unreadable, never absent."""
    got: dict[str, str] = {}
    for line in output.splitlines():
        name, _, rest = line.partition(" ")
        got[name] = rest.strip()
    out = []
    for c in CERTS:
        value = got.get(c.name, "unreadable")
        when = None
        if value.startswith("notAfter="):
            try:
                when = parse_enddate(value)
            except ValueError:
                pass
        out.append(Reading(c, when, value == "absent"))
    return out
