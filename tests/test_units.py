"""Pure functions: parsers of host output, the verdict model, inventory validation."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from hakit.errors import ConfigError
from hakit.hosts import ipv4_addresses, parse_enddate, parse_keepalived
from hakit.inventory import load
from hakit.lab.topology import LabSpec
from hakit.model import Check, Measurement, Outcome, Result, Severity, Verdict, verdict
from hakit.table import table

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


def test_parse_enddate() -> None:
    assert parse_enddate("notAfter=Nov 25 14:09:00 2027 GMT\n") == datetime(2027, 11, 25, 14, 9, tzinfo=timezone.utc)


def test_backend_states_from_haproxy_csv() -> None:
    from checks.test_api_endpoint import backend_states
    csv = ("# pxname,svname,qcur,status\napiserver,FRONTEND,0,OPEN\napiserverbackend,cp1,0,UP\n"
           "apiserverbackend,cp2,0,DOWN 1/2\napiserverbackend,BACKEND,0,UP\n")
    assert backend_states(csv, "apiserverbackend") == {"cp1": "UP", "cp2": "DOWN 1/2"}


def test_alertmanager_routing_picks_first_matching_child() -> None:
    from checks.test_monitoring import route_for
    route = {"receiver": "default", "routes": [
        {"receiver": "team", "matchers": ['team="x"']},
        {"receiver": "null", "matchers": ['severity=~"crit.*"']},
        {"receiver": "pager", "match": {"severity": "critical"}}]}
    assert route_for(route, {"severity": "critical"}) == "null"
    assert route_for(route, {"severity": "warning"}) == "default"


def _result(outcome: Outcome, severity: Severity = Severity.CRITICAL) -> Result:
    return Result(Check("X-1", "t", "etcd", severity, "fix"), outcome, "", 0.0, [Measurement("m", 1)], "n")


@pytest.mark.parametrize(("outcomes", "expected"), [
    ([Outcome.PASS, Outcome.PASS], Verdict.PASS),
    ([Outcome.PASS, Outcome.WARN], Verdict.DEGRADED),
    ([Outcome.WARN, Outcome.FAIL], Verdict.FAIL),
    ([Outcome.PASS, Outcome.ERROR], Verdict.FAIL),
    ([Outcome.SKIP], Verdict.UNKNOWN),
])
def test_property_verdict(outcomes: list[Outcome], expected: Verdict) -> None:
    assert verdict([_result(o) for o in outcomes]) is expected


def test_check_record_rejects_unknown_property() -> None:
    with pytest.raises(ValueError, match="unknown property"):
        Check("X-2", "t", "nonsense", Severity.CRITICAL, "fix")


def test_inventory_defaults_and_overrides(tmp_path: Path) -> None:
    kc = tmp_path / "kubeconfig"
    kc.write_text("{}")
    inv_file = tmp_path / "inv.yaml"
    inv_file.write_text(f"""
cluster: {{name: prod, kubeconfig: {kc.name}}}
api: {{vip: 10.0.0.100, port: 8443}}
control_plane:
  hosts: [{{name: cp1, address: 10.0.0.11}}]
  paths:
    pki: "/srv/{{host}}/pki"
slo: {{vip_failover_seconds: 3}}
""")
    inv = load(inv_file)
    assert inv.kubeconfig == kc and inv.vip_url == "https://10.0.0.100:8443"
    assert inv.slo["vip_failover_seconds"] == 3.0 and inv.slo["backup_max_age_hours"] == 24.0
    assert inv.host_path("pki", "cp1") == "/srv/cp1/pki"
    assert inv.host_path("keepalived_conf", "cp1") == "/etc/keepalived/keepalived.conf"


def test_inventory_rejects_duplicate_hosts_and_unknown_disruptive(tmp_path: Path) -> None:
    inv_file = tmp_path / "inv.yaml"
    inv_file.write_text("cluster: {kubeconfig: /dev/null}\napi: {vip: 1.2.3.4}\n"
                        "control_plane: {hosts: [{name: a, address: 1.1.1.1}, {name: a, address: 1.1.1.2}]}\n"
                        "disruptive: {allowed: [nuke-everything]}\n")
    with pytest.raises(ConfigError) as e:
        load(inv_file)
    assert "host names must be unique" in str(e.value) and "unknown 'nuke-everything'" in str(e.value)


def test_inventory_that_is_not_yaml(tmp_path: Path) -> None:
    bad = tmp_path / "inv.yaml"
    bad.write_text("cluster: [unclosed")
    with pytest.raises(ConfigError, match="not readable YAML"):
        load(bad)


def test_lab_topology_addresses() -> None:
    spec = LabSpec(subnet="10.9.8.0/24", workers=2)
    assert spec.vip == "10.9.8.100" and spec.gateway == "10.9.8.1"
    assert [h.address for h in spec.control_plane_hosts] == ["10.9.8.11", "10.9.8.12", "10.9.8.13"]
    assert [h.name for h in spec.worker_hosts] == ["w1", "w2"]
    with pytest.raises(ValueError):
        LabSpec(subnet="10.0.0.0/16")


def test_table_aligns_columns() -> None:
    assert table(("A", "BB"), [("xyz", "1")]) == "A    BB\nxyz  1"
