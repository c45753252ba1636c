"""Control-plane hosts, seen over SSH as an operator sees them: no swap, one
clock, the HA services running and listening, certificates far from expiry."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from hakit import certs
from hakit.cluster import ssh
from hakit.inventory import Inventory
from hakit.model import Evidence, check

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


@check("HOST-005", "Every certificate a control-plane host runs on is valid for the configured margin",
       property="hosts", runbook="control-plane-restart",
       remediation="""Renew with `kubeadm certs renew all` on each control-plane host, one host at a time,
then restart that host's control-plane static pods (move each manifest out of /etc/kubernetes/manifests
and back); `kubeadm certs check-expiration` lists the dates. A kubelet client certificate close to
expiry means its rotation is off or failing: check `rotateCertificates` in the kubelet's config and
the kubelet's log; kubeadm's renew does not touch it.""")
def test_certificates_not_expiring(cp_hosts: dict[str, Any], inventory: Inventory, evidence: Evidence) -> None:
    """Every certificate `kubeadm certs check-expiration` lists, and the kubelet's client
    certificate it leaves out: an expired one stops the control plane, or drops the node, at a
    known time, on every host whose certificates were issued together."""
    margin, now = inventory.thresholds.cert_min_days, datetime.now(UTC)

    def read(name: str, host: Any) -> list[certs.Reading]:
        return certs.parse(ssh.run(host, name, certs.script(), *certs.arguments(
            inventory.host_path("pki", name), inventory.host_path("kubeconfigs", name))).stdout)
    dated, bad, absent = [], [], {}
    for name, readings in ssh.each(cp_hosts, read).items():
        for r in readings:
            if r.not_after is not None:
                dated.append(((r.not_after - now).total_seconds() / 86400, name, r.cert.name))
            elif r.absent and not r.cert.required:
                absent.setdefault(r.cert.name, []).append(name)
            else:
                bad.append(f"{name}: {r.cert.name} {'absent' if r.absent else 'unreadable'}")
    dated.sort()
    soon = [f"{host}: {cert} expires in {days:.0f} days" if days > 0 else f"{host}: {cert} expired "
            f"{-days:.0f} days ago" for days, host, cert in dated if days < margin]
    evidence.record("certificates read", f"{len(dated)} on {len(cp_hosts)} hosts")
    evidence.record("soonest expiry", f"{dated[0][1]}: {dated[0][2]} in {dated[0][0]:.0f} days" if dated else "n/a",
                    expected=f"> {margin:g} days")
    if absent:
        evidence.record("not on these hosts (kubeadm writes them; this layout has none)",
                        ", ".join(f"{c} ({', '.join(h)})" for c, h in absent.items()))
    assert not soon and not bad, "; ".join(
        ([f"certificates within {margin:g} days of expiry, soonest first: {', '.join(soon)}"] if soon else [])
        + ([f"cannot read: {', '.join(bad)}"] if bad else []))
