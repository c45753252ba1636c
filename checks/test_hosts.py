"""Control-plane hosts, seen over SSH as an operator sees them: no swap, one
clock, the HA services running and listening, certificates far from expiry."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from hakit.cluster import ssh
from hakit.hosts import parse_enddate
from hakit.inventory import Inventory
from hakit.model import Evidence, check

CERTS = ("apiserver.crt", "etcd/server.crt", "etcd/peer.crt", "apiserver-etcd-client.crt")
SERVICES = ("keepalived", "haproxy")


@check("HOST-001", "Swap is off on control-plane hosts", property="hosts", severity="warning",
       remediation="""`swapoff -a` and remove swap entries from /etc/fstab; the kubelet and etcd's latency
assume no swap.""")
def test_swap_off(cp_hosts: dict[str, Any], evidence: Evidence) -> None:
    """Swapping etcd stretches fsyncs into leader elections."""
    swaps = ssh.each(cp_hosts, lambda name, host: len(ssh.output(host, name, "cat /proc/swaps").splitlines()[1:]))
    on = {name: n for name, n in swaps.items() if n}
    evidence.record("hosts with swap", on or "none", expected="none")
    assert not on, f"swap is on: {', '.join(on)}"


@check("HOST-002", "Host clocks agree", property="hosts",
       remediation="""Run chrony or systemd-timesyncd against the same servers on every host
(`chronyc tracking`); skewed clocks break certificate validity and lease timing.""")
def test_clocks_agree(cp_hosts: dict[str, Any], inventory: Inventory, evidence: Evidence) -> None:
    """Leases and certificates are judged by the clock of whoever reads them."""
    tolerance = inventory.thresholds.clock_skew_seconds
    def offset(name: str, host: Any) -> float:
        before = time.time()
        remote = float(ssh.output(host, name, "date +%s.%N"))
        return remote - (before + time.time()) / 2   # half the round trip is the read's uncertainty
    offsets = ssh.each(cp_hosts, offset)
    skew = max(offsets.values()) - min(offsets.values())
    evidence.record("offsets from hakit's clock", {n: f"{o:+.3f} s" for n, o in offsets.items()})
    evidence.record("spread", f"{skew:.3f} s", expected=f"< {tolerance:g} s", ok=skew < tolerance)
    assert skew < tolerance, (f"host clocks differ by {skew:.2f} s (> {tolerance:g} s): "
                              + ", ".join(f"{n} {o:+.2f} s" for n, o in offsets.items()))


@check("HOST-003", "The HA services are running on every host", property="hosts",
       remediation="""`systemctl enable --now keepalived haproxy` on the hosts where they are missing.""")
def test_ha_services_running(cp_hosts: dict[str, Any], evidence: Evidence) -> None:
    """A host without keepalived cannot take the VIP; without haproxy it must not."""
    # --ns $$ --nslist net: processes of this host's network namespace only; one line per service
    script = "; ".join(f"pgrep -x {p} --ns $$ --nslist net >/dev/null; echo $?" for p in SERVICES)
    missing = []
    for name, codes in ssh.each(cp_hosts, lambda name, host: ssh.run(host, name, script).stdout.split()).items():
        for proc, code in zip(SERVICES, codes + ["?"] * len(SERVICES), strict=False):
            if code != "0":
                missing.append(f"{proc} on {name}")
                evidence.about(name, proc)
    evidence.record("not running", missing or "none", expected="none")
    assert not missing, f"not running: {', '.join(missing)}"


@check("HOST-004", "The control-plane ports listen on every host", property="hosts",
       remediation="""Start the component that owns the port (apiserver 6443, etcd 2379/2380, haproxy on the
VIP port); `ss -ltnp` shows what listens.""")
def test_ports_listening(cp_hosts: dict[str, Any], inventory: Inventory, evidence: Evidence) -> None:
    """A port not listening is a component down, whatever its process says."""
    ports = {"apiserver": inventory.apiserver_port, "etcd client": 2379, "etcd peer": 2380,
             "load balancer": inventory.port}
    owner = {"apiserver": "kube-apiserver", "etcd client": "etcd", "etcd peer": "etcd", "load balancer": "haproxy"}
    closed = []
    for name, listening in ssh.each(cp_hosts, lambda name, host: ssh.output(host, name, "ss -Hltn")).items():
        open_ports = {int(line.split()[3].rsplit(":", 1)[1]) for line in listening.splitlines() if line.strip()}
        for what, p in ports.items():
            if p not in open_ports:
                closed.append(f"{what} :{p} on {name}")
                evidence.about(name, owner[what])
    evidence.record("closed", closed or "none", expected="none")
    assert not closed, f"not listening: {', '.join(closed)}"


@check("HOST-005", "apiserver and etcd certificates are valid for the configured margin", property="hosts",
       runbook="control-plane-restart",
       remediation="""Renew with `kubeadm certs renew all` on each control-plane host, then restart the
control-plane static pods; `kubeadm certs check-expiration` lists the dates.""")
def test_certificates_not_expiring(cp_hosts: dict[str, Any], inventory: Inventory, evidence: Evidence) -> None:
    """An expired apiserver or etcd certificate stops the control plane at a known time."""
    margin = inventory.thresholds.cert_min_days
    now = datetime.now(UTC)
    soon, soonest = [], None

    def enddates(name: str, host: Any) -> list[str]:
        """One line per certificate, in CERTS' order: its notAfter, or "unreadable"."""
        script = "; ".join(["for c in " + " ".join(["%s"] * len(CERTS)),
                            "do openssl x509 -enddate -noout -in \"$c\" 2>/dev/null || echo unreadable", "done"])
        out = ssh.run(host, name, script, *(f"{inventory.host_path('pki', name)}/{c}" for c in CERTS)).stdout
        return out.splitlines() + ["unreadable"] * (len(CERTS) - len(out.splitlines()))
    for name, lines in ssh.each(cp_hosts, enddates).items():
        for cert, line in zip(CERTS, lines, strict=False):
            if line.strip() == "unreadable":
                soon.append(f"{name}:{cert} unreadable")
                continue
            days = (parse_enddate(line) - now).total_seconds() / 86400
            soonest = days if soonest is None else min(soonest, days)
            if days < margin:
                soon.append(f"{name}:{cert} expires in {days:.0f} days")
    evidence.record("soonest expiry", f"{soonest:.0f} days" if soonest is not None else "n/a",
                    expected=f"> {margin:g} days")
    assert not soon, f"certificates within {margin:g} days of expiry: {', '.join(soon)}"
