"""Parsers of what hosts print: keepalived.conf, ip addr, openssl enddates, haproxy's CSV."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

from hakit import certs
from hakit.hosts import interface_with, ipv4_addresses, parse_keepalived

KEEPALIVED = """
! comment
global_defs { router_id cp1 }
vrrp_script check_apiserver { script "/etc/keepalived/check_apiserver.sh" }
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 110
    nopreempt
    authentication { auth_type PASS
        auth_pass s3cret }
    virtual_ipaddress { 10.0.0.100/24 dev eth0 }
    track_script { check_apiserver }
}
"""


def test_parse_keepalived_reads_the_vrrp_instance() -> None:
    [inst] = parse_keepalived(KEEPALIVED)
    assert (inst.name, inst.virtual_router_id, inst.priority, inst.auth_pass) == ("VI_1", 51, 110, "s3cret")
    assert inst.vips == ("10.0.0.100",) and inst.track_scripts == ("check_apiserver",) and inst.nopreempt


def test_parse_keepalived_without_track_script() -> None:
    [inst] = parse_keepalived("vrrp_instance X { priority 5\n virtual_ipaddress { 1.2.3.4 } }")
    assert inst.track_scripts == () and inst.virtual_router_id is None and not inst.nopreempt


def test_ipv4_addresses() -> None:
    out = "1: lo    inet 127.0.0.1/8 scope host lo\n2: eth0    inet 10.0.0.11/24 brd 10.0.0.255 scope global eth0\n"
    assert ipv4_addresses(out) == ["127.0.0.1", "10.0.0.11"]


def test_backend_states_from_haproxy_csv() -> None:
    from hakit.apilb import backend_states
    csv = ("# pxname,svname,qcur,status\napiserver,FRONTEND,0,OPEN\napiserverbackend,cp1,0,UP\n"
           "apiserverbackend,cp2,0,DOWN 1/2\napiserverbackend,BACKEND,0,UP\n")
    assert backend_states(csv, "apiserverbackend") == {"cp1": "UP", "cp2": "DOWN 1/2"}


def test_interface_with_finds_the_device_carrying_an_address() -> None:
    out = "1: lo    inet 127.0.0.1/8 scope host lo\n2: eth0@if9    inet 10.0.0.11/24 brd 10.0.0.255 scope global eth0"
    assert interface_with(out, "10.0.0.11") == "eth0" and interface_with(out, "10.0.0.99") is None


def test_certificate_end_dates_are_read_from_the_pem_blocks_as_openssl_reads_them(tmp_path: Path) -> None:
    """Certificates made by openssl (the dates it prints are the truth here), one past 2050
    (GeneralizedTime) and one before (UTCTime); a key beside a certificate is ignored, a
    certificate the host printed nothing for is unreadable, never absent."""
    dates = {}

    def made(days: int) -> str:
        crt, key = tmp_path / f"{days}.crt", tmp_path / f"{days}.key"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", str(key), "-out", str(crt), "-days", str(days), "-subj", "/CN=t"],
                       check=True, capture_output=True)
        said = subprocess.run(["openssl", "x509", "-enddate", "-noout", "-in", str(crt)], check=True,
                              capture_output=True, text=True).stdout.strip().split("=", 1)[1]
        dates[days] = datetime.strptime(said, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=UTC)
        return key.read_text() + crt.read_text()
    out = (f"=== apiserver\n{made(10)}=== ca\n{made(40000)}=== admin.conf\nabsent\n"
           "=== kubelet.conf\n-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")
    got = {r.cert.name: r for r in certs.parse(out)}
    assert got["apiserver"].not_after == dates[10] and got["ca"].not_after == dates[40000] and dates[40000].year > 2050
    assert got["admin.conf"].absent and got["admin.conf"].not_after is None
    assert not got["kubelet.conf"].absent and got["kubelet.conf"].not_after is None
    assert not got["etcd-peer"].absent and got["etcd-peer"].not_after is None, "nothing printed: unreadable"
    assert len(certs.arguments("/p", "/k")) == 2 * len(certs.CERTS)
    assert certs.script().count("%s") == 2 * len(certs.CERTS)
