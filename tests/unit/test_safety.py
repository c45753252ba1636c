"""Safe to point at production: nothing hakit reads (an inventory, a journal, the
cluster) can make it run something else; a journal is never replayed on another
cluster or guessed at; quorum counts voters only. These need no lab."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hakit.apilb import LoadBalancer
from hakit.cluster import ClusterId, network, ssh
from hakit.cluster.components import kubeadm_command, render
from hakit.errors import ConfigError, UnreachableError
from hakit.etcd import Member, Quorum
from hakit.faults.journal import Journal, JournalError, Owner
from hakit.inventory import Host, load
from hakit.validate import ip

INJECTIONS = ["10.0.0.11;touch {marker}", "$(touch {marker})", "`touch {marker}`", "cp1\ntouch {marker}",
              "x' ; touch {marker} ; '", "{initial_cluster}", "a b", "../../etc"]


def _inventory(tmp_path: Path, body: str, cluster: str = "") -> Path:
    (tmp_path / "kubeconfig").write_text("")
    p = tmp_path / "inv.yaml"
    p.write_text(f"cluster: {{kubeconfig: kubeconfig{cluster}}}\n" + body)
    return p


@pytest.mark.parametrize("field,value", [
    ("address", "10.0.0.11;touch /tmp/x"), ("address", "cp1.example.com"), ("name", "{initial_cluster}"),
    ("name", "cp1\\nnotify_master /tmp/x"), ("name", "CP_1 x"),
])
def test_validation_rejects_hostile_host_entries_with_their_field_path(tmp_path: Path, field: str, value: str) -> None:
    host = {"name": "cp1", "address": "10.0.0.11", field: value}
    inv = _inventory(tmp_path, f'api: {{vip: 10.0.0.100}}\ncontrol_plane: {{hosts: [{{name: "{host["name"]}", '
                               f'address: "{host["address"]}"}}]}}\n')
    with pytest.raises(ConfigError, match=rf"control_plane\.hosts\[0\]\.{field}: got"):
        load(inv)


@pytest.mark.parametrize("body,error", [
    ("api: {vip: api.example.com}", "api.vip: got 'api.example.com'; expected an IP address"),
    ("api: {vip: 10.0.0.100, port: 99999}", "api.port: got 99999; expected a port"),
    ("api: {vip: 10.0.0.100}\naccess: {ssh: {user: 'root;id'}}", "access.ssh.user: got"),
    ("api: {vip: 10.0.0.100}\ncontrol_plane: {paths: {etcd_data: 'var/lib/etcd'}}", "control_plane.paths.etcd_data"),
    ("api: {vip: 10.0.0.100}\ncontrol_plane: {paths: {etcd_data: '/var/lib/etcd;reboot'}}",
     "control_plane.paths.etcd_data"),
    ("api: {vip: 10.0.0.100}\netcd: {endpoints: ['https://cp1:2379']}", "etcd.endpoints[0]"),
    ("api: {vip: 10.0.0.100}\ndisruptive: {probe_image: 'pause; reboot'}", "disruptive.probe_image: got"),
    ("api: {vip: 10.0.0.100}\nmonitoring: {prometheus: 'http://p:9090/\"x'}", "monitoring.prometheus"),
])
def test_validation_rejects_what_could_reach_a_shell_or_a_path(tmp_path: Path, body: str, error: str) -> None:
    inv = _inventory(tmp_path, "control_plane: {hosts: [{name: cp1, address: 10.0.0.11}]}\n" + body)
    with pytest.raises(ConfigError) as e:
        load(inv)
    assert error in str(e.value)


def test_a_cluster_name_is_a_file_name_not_a_path(tmp_path: Path) -> None:
    inv = _inventory(tmp_path, "api: {vip: 10.0.0.100}\ncontrol_plane: {hosts: [{name: cp1, address: 10.0.0.11}]}\n",
                     cluster=", name: ../prod")
    with pytest.raises(ConfigError, match="cluster.name: got '../prod'"):
        load(inv)


def test_a_hostile_value_reaches_a_shell_as_one_inert_argument(tmp_path: Path) -> None:
    """Every placeholder is filled in one pass and quoted: what a value holds is never run,
    and it never brings in another placeholder."""
    marker = tmp_path / "marker"
    for raw in INJECTIONS:
        value = raw.format(marker=marker, initial_cluster="{initial_cluster}")
        command = render("printf '%s|' {action} {host} {component} {initial_cluster}", "stop", value, "etcd")
        out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
        assert out.split("|")[1] == value and not marker.exists(), (value, command)


def test_commands_refuse_unknown_components_and_bad_initial_clusters() -> None:
    with pytest.raises(ConfigError, match="unknown component"):
        kubeadm_command("stop", "etcd; reboot")
    with pytest.raises(ConfigError, match="expected name=URL pairs"):
        kubeadm_command("rejoin", "etcd", "cp1=https://10.0.0.11:2380#e ; reboot")
    assert "pkill --signal KILL -f '^([^ ]*/)?kube-controller-manager( |$)'" == \
        kubeadm_command("kill", "kube-controller-manager")


def test_a_node_address_read_from_the_cluster_must_be_an_ip() -> None:
    assert ip("10.0.0.21", "node w1: InternalIP") == "10.0.0.21"
    with pytest.raises(ConfigError, match="node w1: InternalIP: '10.0.0.21;id' is not an IP address"):
        ip("10.0.0.21;id", "node w1: InternalIP")
    with pytest.raises(ConfigError):
        network.partition_script(["10.0.0.12 -j ACCEPT; reboot"])


def test_ssh_reaches_a_hostile_address_as_one_argument_and_its_socket_is_private(tmp_path: Path) -> None:
    """Were validation bypassed, testinfra still hands the address to ssh as one quoted
    argument; the control socket's path holds nothing from the inventory."""
    marker = tmp_path / "marker"
    inv = load(_inventory(tmp_path, "api: {vip: 10.0.0.100}\n"
                                    "control_plane: {hosts: [{name: cp1, address: 10.0.0.11}]}\n"
                                    "access: {ssh: {user: root}}\n"))
    host = ssh.connect(inv, "cp1", f"10.0.0.11;touch {marker}")
    with pytest.raises(UnreachableError):   # ssh cannot resolve it: one clear line, nothing run here
        ssh.run(host, "cp1", "true")
    assert not marker.exists()
    d = ssh.control_dir()
    assert oct(d.stat().st_mode)[-3:] == "700" and "BatchMode=yes" in ssh.ssh_options()
    assert f"ControlPath={d}/%C" in ssh.ssh_options()


def test_load_balancer_templates_refuse_values_that_change_the_config() -> None:
    lb = LoadBalancer("10.0.0.100", 24, 8443, 6443, [Host("cp1", "10.0.0.11")], auth_pass="ab\n notify_master /x")
    with pytest.raises(ConfigError, match="refusing to render"):
        lb.keepalived_conf(lb.hosts[0], "eth0", "/etc/keepalived/check_apiserver.sh")
    ok = LoadBalancer("10.0.0.100", 24, 8443, 6443, [Host("cp1", "10.0.0.11")], auth_pass="abcd1234")
    assert "auth_pass abcd1234" in ok.keepalived_conf(ok.hosts[0], "eth0", "/etc/keepalived/check_apiserver.sh")


def _entry(undo: dict, owner: dict | None = None, cluster: dict | None = None) -> str:
    return json.dumps({"event": "inject", "id": "abc", "fault": "stop etcd on cp3", "undo": undo,
                       "injected_at": 1.0, "owner": owner or {"host": "elsewhere", "pid": 1, "started": "1"},
                       "cluster": cluster or {}}) + "\n"


def test_a_tampered_undo_kind_or_argument_is_refused(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.jsonl")
    for undo, why in ([{"kind": "__class__"}, "unknown undo kind '__class__'"],
                      [{"kind": "run", "host": "cp1", "command": "reboot"}, "unknown undo kind 'run'"],
                      [{"kind": "start", "host": "cp1;id", "component": "etcd"}, "start host='cp1;id'"],
                      [{"kind": "start", "host": "cp1", "component": "etcd", "extra": 1},
                       "start takes host, component"],
                      [{"kind": "delete_namespace", "namespace": "kube-system"}, "expected a hakit probe namespace"],
                      [{"kind": "undrain", "host": "w1", "deployments": ["kube-system/coredns;reboot"]},
                       "expected namespace/name of at most 1000 Deployments"],
                      [{"kind": "undrain", "host": "w1", "deployments": "kube-system/coredns"},
                       "expected namespace/name of at most 1000 Deployments"]):
        j.path.write_text(_entry(undo))
        with pytest.raises(JournalError, match="line 1") as e:
            j.pending()
        assert why in str(e.value)


def test_a_torn_or_corrupt_journal_is_refused_with_its_line(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.jsonl")
    good = _entry({"kind": "start", "host": "cp3", "component": "etcd"})
    j.path.write_text(good + '{"event": "inj\n' + good)
    with pytest.raises(JournalError, match="line 2: not a journal record"):
        j.pending()
    j.path.write_text(good + good[:20])
    with pytest.raises(JournalError, match="last line is cut short"):
        j.pending()


def test_journal_files_are_private_and_entries_carry_owner_and_cluster(tmp_path: Path) -> None:
    j = Journal(tmp_path / "state" / "faults" / "prod.jsonl")
    entry = j.injecting("stop etcd on cp3", {"kind": "start", "host": "cp3", "component": "etcd"},
                        ClusterId("uid-1", "cid-1"))
    assert oct(j.path.stat().st_mode)[-3:] == "600" and oct(j.path.parent.stat().st_mode)[-3:] == "700"
    [read] = j.pending()
    assert read.owner == Owner.me() and read.cluster == ClusterId("uid-1", "cid-1") and read.id == entry.id
    assert not read.owner.is_gone()
    assert Owner(read.owner.host, read.owner.pid, "0").is_gone(), "same pid, other start time: another process"
    with pytest.raises(JournalError, match="unknown undo kind"):
        j.injecting("x", {"kind": "reboot"}, ClusterId())
    j.restored(entry.id)
    assert not j.pending()


def test_cluster_identities_differ_only_on_what_both_know() -> None:
    assert ClusterId("a", "1").differs(ClusterId("b", "1"))
    assert ClusterId("a", "1").differs(ClusterId("a", "2"))
    assert not ClusterId("a", "").differs(ClusterId("a", "2"))


def _member(name: str, learner: bool = False) -> Member:
    return Member(id=name, name=name, peer_urls=(), client_urls=(), is_learner=learner)


def test_quorum_counts_voters_only() -> None:
    three_and_a_learner = [(_member("a"), True), (_member("b"), True), (_member("c"), True), (_member("", True), False)]
    q = Quorum.of(three_and_a_learner)
    assert (q.voters, q.healthy, q.needed, q.tolerance) == (3, 3, 2, 1)
    assert Quorum.of([(_member("a"), True), (_member("b"), False), (_member("c"), True)]).tolerance == 0
    assert Quorum.of([(_member("a"), True), (_member("b"), False), (_member("c"), False)]).tolerance < 0


def test_a_check_whose_clean_up_fails_is_an_error_not_a_pass(tmp_path: Path) -> None:
    """A probe namespace that is not deleted is something left on the cluster: say so."""
    (tmp_path / "test_x.py").write_text(
        "import pytest\nfrom hakit.model import check\n\n"
        "@pytest.fixture\ndef probe():\n    yield\n    raise RuntimeError('namespace hakit-probe-1 not deleted')\n\n"
        "@check('X-001', 'x', property='workloads', remediation='r')\ndef test_x(probe):\n    pass\n")
    out = tmp_path / "r.json"
    subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "test_x.py"),
                    f"--hakit-json={out}", "-q", "-p", "no:cacheprovider", f"--rootdir={tmp_path}",
                    f"--inventory={tmp_path / 'none.yaml'}"], capture_output=True, text=True,
                   cwd=Path(__file__).parents[2])
    [r] = json.loads(out.read_text())["results"]
    assert r["outcome"] == "error" and "clean-up failed" in r["message"] and "not deleted" in r["message"], r
