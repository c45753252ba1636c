"""Inventory validation: defaults, one line per problem, duplicates, in-cluster, the kubeconfig."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hakit.errors import ConfigError
from hakit.inventory import load


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
    assert inv.slo.vip_failover_seconds == 3.0 and inv.slo.backup_max_age_hours == 24.0
    assert inv.host_path("pki", "cp1") == "/srv/cp1/pki"
    assert inv.host_path("keepalived_conf", "cp1") == "/etc/keepalived/keepalived.conf"


def test_inventory_rejects_duplicate_hosts_and_unknown_disruptive(tmp_path: Path) -> None:
    inv_file = tmp_path / "inv.yaml"
    inv_file.write_text("cluster: {kubeconfig: /dev/null}\napi: {vip: 1.2.3.4}\n"
                        "control_plane: {hosts: [{name: a, address: 1.1.1.1}, {name: a, address: 1.1.1.2}]}\n"
                        "disruptive: {allowed: [nuke-everything]}\n")
    with pytest.raises(ConfigError) as e:
        load(inv_file)
    assert "control_plane.hosts[1].name: a is also control_plane.hosts[0].name" in str(e.value)
    assert "unknown 'nuke-everything'" in str(e.value)


@pytest.mark.parametrize("body, clash", [
    ("control_plane: {hosts: [{name: cp1, address: 10.0.0.11}, {name: cp2, address: 10.0.0.12},"
     " {name: cp3, address: 10.0.0.12}]}",
     "control_plane.hosts[2].address: 10.0.0.12 is also control_plane.hosts[1].address"),
    ("control_plane: {hosts: [{name: cp1, address: 10.0.0.11}]}\nworkers: {hosts: [{name: cp1, address: 10.0.0.21}]}",
     "workers.hosts[0].name: cp1 is also control_plane.hosts[0].name"),
    ("control_plane: {hosts: [{name: cp1, address: 10.0.0.11}]}\n"
     "monitoring: {hosts: [{name: mon1, address: 10.0.0.11}]}",
     "monitoring.hosts[0].address: 10.0.0.11 is also control_plane.hosts[0].address"),
    ("control_plane: {hosts: [{name: cp1, address: 10.0.0.100}]}",
     "api.vip: 10.0.0.100 is also control_plane.hosts[0].address"),
    ("control_plane: {hosts: [{name: cp1, address: 10.0.0.11}]}\n"
     "etcd: {endpoints: ['https://10.0.0.11:2379', 'https://10.0.0.11:2379/']}",
     "etcd.endpoints[1]: https://10.0.0.11:2379/ is also etcd.endpoints[0]"),
])
def test_inventory_names_both_entries_of_a_duplicate(tmp_path: Path, body: str, clash: str) -> None:
    """Two entries for one host validate today's layout as three hosts read twice: refused,
    naming both, exit 2 (the CLI's ConfigError)."""
    inv_file = tmp_path / "inv.yaml"
    inv_file.write_text("cluster: {kubeconfig: /dev/null}\napi: {vip: 10.0.0.100}\n" + body + "\n")
    with pytest.raises(ConfigError) as e:
        load(inv_file)
    assert clash in str(e.value), str(e.value)
    out = subprocess.run([sys.executable, "-m", "hakit.cli", "inventory", "validate", str(inv_file)],
                         capture_output=True, text=True)
    assert out.returncode == 2 and clash in out.stderr and "Traceback" not in out.stderr, out


def test_inventory_that_is_not_yaml(tmp_path: Path) -> None:
    bad = tmp_path / "inv.yaml"
    bad.write_text("cluster: [unclosed")
    with pytest.raises(ConfigError, match="not readable YAML"):
        load(bad)


def test_inventory_journal_default_and_control_template(tmp_path: Path) -> None:
    inv_file = tmp_path / "inv.yaml"
    base = "cluster: {name: prod, kubeconfig: /dev/null}\napi: {vip: 1.2.3.4}\n" \
           "control_plane: {hosts: [{name: a, address: 1.1.1.1}]}\n"
    inv_file.write_text(base)
    inv = load(inv_file)
    assert inv.fault_journal == Path.home() / ".local/state/hakit/faults/prod.jsonl" and inv.fault_control is None
    inv_file.write_text(base + "disruptive: {control: 'ctl {component}'}\n")
    with pytest.raises(ConfigError, match=r"disruptive.control: expected a command template with \{action\}"):
        load(inv_file)


def test_inventory_in_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hakit.inventory import IN_CLUSTER
    inv_file = tmp_path / "inv.yaml"
    inv_file.write_text("api: {vip: 1.2.3.4}\ncontrol_plane: {hosts: [{name: a, address: 1.1.1.1}]}\n")
    with pytest.raises(ConfigError, match="cluster.kubeconfig: missing"):
        load(inv_file)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    assert load(inv_file).kubeconfig == IN_CLUSTER


def test_a_kubeconfig_may_be_missing_only_before_the_cluster_exists(tmp_path: Path) -> None:
    """kubeadm-init writes it: host-prepare, provision-api-lb and kubeadm-init load the
    inventory without it; everything else names it missing."""
    from hakit.errors import ConfigError
    from hakit.inventory import load
    inv = tmp_path / "provision.yaml"
    inv.write_text("cluster: {kubeconfig: admin.conf}\napi: {vip: 10.0.0.100, port: 8443}\n"
                   "control_plane: {hosts: [{name: cp1, address: 10.0.0.11}]}\n"
                   "workers: {hosts: [{name: w1, address: 10.0.0.21}]}\n")
    assert load(inv, cluster_exists=False).workers[0].address == "10.0.0.21"
    with pytest.raises(ConfigError, match="cluster.kubeconfig: file .*admin.conf does not exist"):
        load(inv)
