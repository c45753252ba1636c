"""Pure functions: parsers of host output, the verdict model, inventory validation."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from hakit import wait
from hakit.cluster.components import kubeadm_command, render
from hakit.cluster.network import partition_script, self_healing
from hakit.cluster.steady import short_budgets
from hakit.errors import ConfigError
from hakit.faults.nodes import pdb_shortfalls
from hakit.hosts import interface_with, ipv4_addresses, parse_enddate, parse_keepalived
from hakit.inventory import load
from hakit.lab.topology import LabSpec
from hakit.measure import Watch
from hakit.model import Check, Evidence, Measurement, Outcome, Result, Severity, Verdict, verdict
from hakit.prometheus import duration_seconds
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
    assert parse_enddate("notAfter=Nov 25 14:09:00 2027 GMT\n") == datetime(2027, 11, 25, 14, 9, tzinfo=UTC)


def test_backend_states_from_haproxy_csv() -> None:
    from hakit.apilb import backend_states
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
    ([Outcome.PASS, Outcome.ERROR], Verdict.UNVERIFIED),
    ([Outcome.PASS, Outcome.SKIP], Verdict.UNVERIFIED),     # one passed, the rest not looked at: no PASS
    ([Outcome.WARN, Outcome.SKIP], Verdict.UNVERIFIED),
    ([Outcome.FAIL, Outcome.SKIP], Verdict.FAIL),
    ([Outcome.SKIP], Verdict.UNVERIFIED),
])
def test_property_verdict(outcomes: list[Outcome], expected: Verdict) -> None:
    assert verdict([_result(o) for o in outcomes]) is expected


def test_an_accepted_skip_does_not_leave_the_property_unverified() -> None:
    results = [_result(Outcome.PASS), _result(Outcome.SKIP)]
    assert verdict(results, accepted_skips={"X-1"}) is Verdict.PASS
    assert verdict(results, accepted_skips={"OTHER-1"}) is Verdict.UNVERIFIED


def test_a_check_kept_from_running_by_another_runs_lock_exits_4_not_3() -> None:
    from hakit.results import Results
    errored = [_result(Outcome.ERROR)]
    assert Results(errored, {}, {}, [], refused=["X-1"]).exit_code == 4   # a precondition: another run holds it
    assert Results(errored, {}, {}, []).exit_code == 3                    # could not run: unreachable


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


def test_lab_topology_addresses() -> None:
    spec = LabSpec(subnet="10.9.8.0/24", workers=2)
    assert spec.vip == "10.9.8.100" and spec.gateway == "10.9.8.1"
    assert [h.address for h in spec.control_plane_hosts] == ["10.9.8.11", "10.9.8.12", "10.9.8.13"]
    assert [h.name for h in spec.worker_hosts] == ["w1", "w2"]
    with pytest.raises(ValueError):
        LabSpec(subnet="10.0.0.0/16")


def test_table_aligns_columns() -> None:
    assert table(("A", "BB"), [("xyz", "1")]) == "A    BB\nxyz  1"


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


def test_kubeadm_commands_use_systemd_for_units_and_manifests_for_static_pods() -> None:
    assert kubeadm_command("stop", "keepalived") == "systemctl stop keepalived"
    assert kubeadm_command("kill", "haproxy") == "systemctl kill --signal=SIGKILL haproxy"
    stop = kubeadm_command("stop", "etcd")
    assert stop.startswith("mkdir -p /etc/kubernetes/hakit-parked && { [ ! -f /etc/kubernetes/manifests/etcd.yaml ] "
                           "|| mv /etc/kubernetes/manifests/etcd.yaml ")   # parked already: stopped all the same
    assert "crictl ps -q --state running --name '^etcd$'" in stop
    start = kubeadm_command("start", "kube-apiserver")   # run for real in tests/kubeadm
    assert start.startswith("if [ -f /etc/kubernetes/hakit-parked/kube-apiserver.yaml ]; then mv "
                            "/etc/kubernetes/hakit-parked/kube-apiserver.yaml /etc/kubernetes/manifests/; fi && ")
    assert "crictl ps -q --state running --name '^kube-apiserver$' | grep -q . && exit 0" in start


KUBEADM_ETCD = """\
apiVersion: v1
kind: Pod
metadata:
  annotations:
    kubeadm.kubernetes.io/etcd.advertise-client-urls: https://10.0.0.13:2379
  labels:
    component: etcd
  name: etcd
  namespace: kube-system
spec:
  containers:
  - command:
    - etcd
    - --initial-advertise-peer-urls=https://10.0.0.13:2380
    - --initial-cluster=cp1=https://10.0.0.11:2380,cp3=https://10.0.0.13:2380
    - --initial-cluster-state=new
    - --name=cp3
"""


def test_kubeadm_rejoin_edits_the_parked_etcd_manifest_and_puts_it_back(tmp_path: Path) -> None:
    """Run as rendered, with kubeadm's two directories moved under tmp_path."""
    parked, manifests = tmp_path / "parked", tmp_path / "manifests"
    parked.mkdir()
    manifests.mkdir()
    (parked / "etcd.yaml").write_text(KUBEADM_ETCD)
    cluster = "cp1=https://10.0.0.11:2380,cp2=https://10.0.0.12:2380,cp3=https://10.0.0.13:2380"
    command = kubeadm_command("rejoin", "etcd", cluster).replace(
        "/etc/kubernetes/hakit-parked", str(parked)).replace("/etc/kubernetes/manifests", str(manifests))
    subprocess.run(["sh", "-c", command], check=True)
    flags = [line.strip() for line in (manifests / "etcd.yaml").read_text().splitlines() if "--initial" in line]
    assert flags == ["- --initial-advertise-peer-urls=https://10.0.0.13:2380",
                     "- --initial-cluster-state=existing", f"- --initial-cluster={cluster}"]
    assert not (parked / "etcd.yaml").exists()
    first = yaml.safe_load((manifests / "etcd.yaml").read_text())
    assert set(first["metadata"]["annotations"]) == {"kubeadm.kubernetes.io/etcd.advertise-client-urls",
                                                     "hakit.io/rejoined"}
    # Rejoined again, it differs (a new static pod UID: no crash-loop back-off carried over),
    # with one annotation still; a manifest without annotations gets them.
    (manifests / "etcd.yaml").rename(parked / "etcd.yaml")
    subprocess.run(["sh", "-c", command], check=True)
    again = yaml.safe_load((manifests / "etcd.yaml").read_text())
    stamps = [doc["metadata"]["annotations"]["hakit.io/rejoined"] for doc in (first, again)]
    assert stamps[0] != stamps[1], stamps
    (parked / "etcd.yaml").write_text(KUBEADM_ETCD.replace(
        "  annotations:\n    kubeadm.kubernetes.io/etcd.advertise-client-urls: https://10.0.0.13:2379\n", ""))
    subprocess.run(["sh", "-c", command], check=True)
    bare = yaml.safe_load((manifests / "etcd.yaml").read_text())
    assert list(bare["metadata"]["annotations"]) == ["hakit.io/rejoined"] and bare["spec"] == first["spec"]


def test_a_control_template_is_filled_and_quoted() -> None:
    assert render("ctl {action} {host} {component}", "is-active", "cp 1", "etcd") == "ctl is-active 'cp 1' etcd"
    assert render(None, "stop", "cp1", "kubelet") == "systemctl stop kubelet"


def test_link_faults_heal_themselves_detached_from_ssh() -> None:
    cmd = self_healing("ip link set dev eth0 down", "ip link set dev eth0 up", 20)
    assert cmd == ("nohup setsid sh -c 'sleep 0.3; a=$(date +%s.%N); ip link set dev eth0 down; "
                   "echo $a $(date +%s.%N) > /run/hakit-fault-at; sleep 20; ip link set dev eth0 up' >/dev/null 2>&1 &")
    script = partition_script(["10.0.0.12"])
    assert "iptables -A HAKIT-PARTITION -s 10.0.0.12 -j DROP" in script
    assert "iptables -C INPUT -j HAKIT-PARTITION 2>/dev/null || iptables -I INPUT -j HAKIT-PARTITION" in script


def test_interface_with_finds_the_device_carrying_an_address() -> None:
    out = "1: lo    inet 127.0.0.1/8 scope host lo\n2: eth0@if9    inet 10.0.0.11/24 brd 10.0.0.255 scope global eth0"
    assert interface_with(out, "10.0.0.11") == "eth0" and interface_with(out, "10.0.0.99") is None


def _pdb(name: str, labels: dict[str, str], allowed: int) -> client.V1PodDisruptionBudget:
    return client.V1PodDisruptionBudget(
        metadata=client.V1ObjectMeta(name=name, namespace="ns"),
        spec=client.V1PodDisruptionBudgetSpec(selector=client.V1LabelSelector(match_labels=labels)),
        status=client.V1PodDisruptionBudgetStatus(disruptions_allowed=allowed, current_healthy=1,
                                                  desired_healthy=1, expected_pods=1))


def test_pdb_shortfalls_name_budgets_that_cannot_lose_a_nodes_pods() -> None:
    pods = [client.V1Pod(metadata=client.V1ObjectMeta(name=f"p{i}", namespace="ns", labels={"app": app}))
            for i, app in enumerate(["a", "a", "b"])]
    short = pdb_shortfalls([_pdb("a", {"app": "a"}, 1), _pdb("b", {"app": "b"}, 1), _pdb("c", {"app": "c"}, 0)], pods)
    assert short == ["PDB ns/a: 2 of its pods on this node, 1 disruption(s) allowed"]
    by_expression = _pdb("x", {}, 0)   # a full selector: matchExpressions count as much as matchLabels
    by_expression.spec.selector = client.V1LabelSelector(match_expressions=[
        client.V1LabelSelectorRequirement(key="app", operator="In", values=["b"])])
    assert pdb_shortfalls([by_expression], pods) == ["PDB ns/x: 1 of its pods on this node, 0 disruption(s) allowed"]


def test_watch_outage_spans_from_the_first_bad_probe_to_the_end_of_the_last() -> None:
    values = iter([True, False, RuntimeError("down"), True, True])
    with Watch("probe", lambda: next(values, True), interval=0.01) as w:
        wait.until(lambda: len(w.samples) >= 5, 5, "five samples")
    start, end = w.outage()  # type: ignore[misc]
    assert start == w.samples[1][0] and end >= w.samples[2][0]
    assert w.failures()[0] == 2 and w.first(lambda v: v is True, after=w.samples[2][0]) == w.samples[3][0]


@pytest.mark.parametrize("text, seconds", [("5s", 5), ("1m", 60), ("1m30s", 90), ("2h", 7200), ("500ms", 0.5)])
def test_prometheus_durations(text: str, seconds: float) -> None:
    assert duration_seconds(text) == seconds


def test_runbook_parameters_are_checked_in_one_line() -> None:
    from hakit.runbook import get
    rb = get("control-plane-restart")
    with pytest.raises(ConfigError, match="parameter host is required"):
        rb.resolve({"component": "etcd"})
    with pytest.raises(ConfigError, match=r"component='keepalived'; expected one of kube-apiserver"):
        rb.resolve({"host": "cp1", "component": "keepalived"})
    with pytest.raises(ConfigError, match="unknown parameter\\(s\\) colour"):
        rb.resolve({"host": "cp1", "component": "etcd", "colour": "red"})
    assert get("etcd-backup").resolve({}) == {"keep": "7", "dir": ""}


def _doc(started: float, etcd: str, failover: float, outcome: str = "pass") -> dict:
    check = {"id": "VIP-D01", "title": "VIP moves", "property": "api-endpoint", "severity": "critical",
             "remediation": "r", "runbook": None, "disruptive": "vip-failover"}
    return {"schema": "hakit.results/v1", "cluster": "prod", "started": started, "finished": started + 60,
            "duration": 60.0, "verdicts": {"api-endpoint": "pass" if outcome == "pass" else "fail", "etcd": etcd},
            "summary": {"pass": 1, "fail": int(outcome == "fail"), "warn": 0, "skip": 0, "error": 0},
            "results": [{"check": check, "outcome": outcome, "message": "", "nodeid": "checks/x.py::t",
                         "duration": 1.0, "deadline": [10.0, "slo.vip_failover_seconds"], "timeline": [],
                         "evidence": [{"name": "VIP failover", "value": f"{failover} s", "expected": "≤ 10 s",
                                       "ok": failover <= 10, "seconds": failover}]}]}


def test_history_flags_what_regressed_and_keeps_each_durations_series() -> None:
    from hakit.report.history import regressions, series
    docs = [_doc(1000, "pass", 2.0), _doc(2000, "pass", 3.0), _doc(3000, "fail", 12.5, "fail")]
    found = regressions(docs)
    assert "etcd quorum and health: pass → fail" in found
    assert any(r.startswith("VIP-D01 VIP failover: 3.0 s → 12.5 s, past ≤ 10 s") for r in found), found
    [s] = series(docs)
    assert s.key == "VIP-D01 · VIP failover" and s.points == [(0, 2.0), (1, 3.0), (2, 12.5)] and s.slo == 10.0
    assert regressions(docs[:2]) == []


def test_metrics_exposition_of_an_audit() -> None:
    from hakit.report.metrics import exposition
    text = exposition(_doc(1000, "degraded", 3.5, "fail"))
    assert 'hakit_audit_success{cluster="prod"} 0' in text
    assert 'hakit_property_verdict{cluster="prod",property="etcd"} 1' in text
    assert 'hakit_check_status{cluster="prod",check="VIP-D01",property="api-endpoint",severity="critical"} 2' in text
    assert 'hakit_measured_seconds{cluster="prod",check="VIP-D01",measurement="VIP failover"} 3.5' in text
    assert "# TYPE hakit_audit_timestamp_seconds gauge" in text


def test_inventory_in_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hakit.inventory import IN_CLUSTER
    inv_file = tmp_path / "inv.yaml"
    inv_file.write_text("api: {vip: 1.2.3.4}\ncontrol_plane: {hosts: [{name: a, address: 1.1.1.1}]}\n")
    with pytest.raises(ConfigError, match="cluster.kubeconfig: missing"):
        load(inv_file)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    assert load(inv_file).kubeconfig == IN_CLUSTER


def test_an_audit_remediates_only_the_named_runbooks_and_never_guesses_parameters() -> None:
    from hakit.runbook import load_all
    from hakit.runbook.remediate import plan, remediate

    def result(check_id: str, outcome: str, runbook: str) -> Result:
        return Result(Check(check_id, "t", "etcd", Severity.CRITICAL, "fix", runbook), Outcome(outcome), "", 0.0, [],
                      "n")
    results = [result("ETCD-008", "fail", "etcd-backup"), result("API-002", "fail", "control-plane-restart"),
               result("API-004", "pass", "vip-recover"), result("CP-002", "warn", "control-plane-restart")]
    assert plan(results, [], ["etcd-backup"], load_all()) == [("etcd-backup", {}, ["ETCD-008"])]
    assert plan(results, [], ["vip-recover"], load_all()) == [], "a passing check is not remediated"
    [run] = remediate(results, [], None, ["control-plane-restart"], print)  # type: ignore[arg-type]
    assert run["status"] == "not run" and run["for_checks"] == ["API-002", "CP-002"]
    assert run["error"].endswith("hakit runbook run control-plane-restart host=… component=…")


def test_the_restore_swap_is_safe_to_repeat_and_works_on_a_mount_point(tmp_path: Path) -> None:
    """A resumed etcd-restore-snapshot may run its swap again: the restored data must stay.
    The data dir is a mount point of its own (as on production hosts), where moving the
    data dir itself fails with EBUSY: only member/ inside it moves."""
    import importlib.util

    from hakit.cluster.ssh import quote as ssh_quote
    from hakit.runbook import RUNBOOKS_DIR, Context
    spec = importlib.util.spec_from_file_location("restore", RUNBOOKS_DIR / "etcd_restore_snapshot.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    inv_file = tmp_path / "inv.yaml"
    inv_file.write_text("cluster: {kubeconfig: /dev/null}\napi: {vip: 1.2.3.4}\n"
                        "control_plane: {hosts: [{name: cp1, address: 1.1.1.1}], "
                        f"paths: {{etcd_data: '{tmp_path}/{{host}}/etcd'}}}}\n")
    data = tmp_path / "cp1" / "etcd"
    data.mkdir(parents=True)
    if subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(data)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        (data / "member" / "old").mkdir(parents=True)
        (data / ".hakit-restored" / "member" / "new").mkdir(parents=True)
        (data / ".hakit-restore.db").write_text("snapshot")
        command = ssh_quote(module.datadir.SWAP_IN_RESTORED,
                            *module.swap_args(Context(load(inv_file), {}, {"stamp": "T"}), "cp1"))
        for _ in range(2):
            subprocess.run(["sh", "-c", command], check=True)
            assert (data / "member" / "new").is_dir() and (data / ".hakit-before-restore-T" / "member" / "old").is_dir()
        assert sorted(p.name for p in data.iterdir()) == [".hakit-before-restore-T", "member"]
    finally:
        subprocess.run(["umount", str(data)], check=True)

def test_an_audits_options_are_declared_once_for_the_cli_and_the_plugin() -> None:
    from hakit.cli import build_parser
    from hakit.selection import Selection
    args, _ = build_parser().parse_known_args(["check", "--property", "etcd", "--check", "API-001", "--disruptive",
                                               "--accept-skip", "ETCD-008", "--metrics", "m.prom"])
    assert Selection.from_args(args).argv() == [
        "--hakit-property=etcd", "--hakit-check=API-001", "--hakit-accept-skip=ETCD-008", "--hakit-disruptive",
        "--hakit-metrics=m.prom"]


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


def test_the_probe_runs_a_pause_image_every_worker_already_holds(tmp_path: Path) -> None:
    """An air-gapped kubeadm cluster holds its sandbox image and nothing upstream's: the probe
    must not need a pull (on the kubeadm lab, the upstream default never starts)."""
    from hakit.checks.test_failover_workloads import UPSTREAM_PAUSE, probe_image

    def node(name: str, images: list[str], control_plane: bool = False) -> client.V1Node:
        labels = {"node-role.kubernetes.io/control-plane": ""} if control_plane else {}
        return client.V1Node(metadata=client.V1ObjectMeta(name=name, labels=labels), status=client.V1NodeStatus(
            images=[client.V1ContainerImage(names=[n]) for n in images]))
    (tmp_path / "kubeconfig").write_text("")
    (tmp_path / "inv.yaml").write_text("cluster: {kubeconfig: kubeconfig}\napi: {vip: 10.0.0.100}\n"
                                       "control_plane: {hosts: [{name: cp1, address: 10.0.0.11}]}\n")
    inv = load(tmp_path / "inv.yaml")
    pause = "registry.k8s.io/pause:3.10.2"
    nodes = [node("cp1", ["registry.k8s.io/pause:3.9"], control_plane=True),
             node("w1", [pause, f"registry.k8s.io/pause@sha256:{'a' * 64}", "x/coredns:1"]), node("w2", [pause])]
    assert probe_image(inv, nodes) == pause
    assert probe_image(inv, nodes + [node("w3", [])]) == UPSTREAM_PAUSE    # not on every worker: pull upstream's
    with (tmp_path / "inv.yaml").open("a") as f:
        f.write("disruptive: {probe_image: 'r.example/p:1'}\n")
    assert probe_image(load(tmp_path / "inv.yaml"), nodes) == "r.example/p:1"


def test_ha_targets_are_known_by_what_they_are_and_their_alerts_by_the_job_they_carry() -> None:
    """MON-D01 matched etcdMembersDown on job="etcd"; under kube-prometheus-stack's names the
    alert carries job="kube-etcd" and was never seen (the kubeadm lab's MON-D01 found it)."""
    from hakit.prometheus import ha_jobs, ha_targets
    kps = [{"labels": {"job": "kube-etcd", "instance": "10.0.3.11:2381"}},
           {"labels": {"job": "apiserver", "instance": "10.0.3.11:6443"}},
           {"labels": {"job": "custom", "instance": "10.0.3.11:10259"}},      # known by its port
           {"labels": {"job": "node-exporter", "instance": "10.0.3.11:9100"}}]
    assert {c: len(t) for c, t in ha_targets(kps).items()} == {
        "etcd": 1, "kube-apiserver": 1, "kube-controller-manager": 0, "kube-scheduler": 1, "haproxy": 0}
    assert ha_jobs(kps) == {"etcd": "kube-etcd", "kube-apiserver": "apiserver", "kube-scheduler": "custom"}


def test_time_zero_is_when_the_fault_took_effect_with_its_uncertainty() -> None:
    """The action's send time is hakit's latency, not the cluster's: the host's record wins,
    else the first effect seen (within its timeline's resolution), never before sending."""
    from hakit.measure import time_zero
    assert time_zero(10.0, 10.5, (10.4, 0.002), [(10.2, 0.1, "x")])[:2] == (10.4, 0.002)
    t0, pm, how = time_zero(10.0, 10.5, None, [(12.0, 0.1, "a request failed"), (11.0, 0.01, "cp1 dropped the VIP"),
                                         (9.0, 0.01, "before the fault: not its effect")])
    assert (round(t0, 3), round(pm, 3)) == (10.995, 0.005) and how.endswith("cp1 dropped the VIP")
    assert [round(v, 3) for v in time_zero(10.0, 10.5, None, [(10.05, 0.1, "x")])[:2]] == [10.025, 0.025]   # clipped
    assert time_zero(10.0, 10.5, None, [(None, 0.1, "x")]) == (10.25, 0.25, "between sending the action and its return")


def test_a_client_outage_runs_from_the_first_failed_request_to_the_first_good_one() -> None:
    from hakit.measure import Timeline
    tl = Timeline("api", 0.1)
    # 0.3 got through amid the failures (a SYN retried as the VIP moved): the outage goes on
    for t, v in [(0.0, True), (0.1, True), (0.2, False), (0.3, True), (0.4, False), (1.4, False), (2.4, True),
                 (5.0, False), (5.1, True)]:
        tl.seen(v, t)
    assert tl.first_outage(after=0.05) == (0.2, 2.4)
    assert tl.first_outage(after=2.45) == (5.0, 5.1)   # more than `gap` later: another outage (the move back)
    assert tl.first_outage(after=0.05, before=0.1) is None   # began after the window
    assert round(tl.gap_before(2.4), 3) == 1.0      # a hung probe widens the uncertainty
    tl.seen(False, 6.0)
    assert tl.first_outage(after=5.5) is None       # not over yet


def test_took_effect_moves_time_zero_and_keeps_the_sending_before_it() -> None:
    e = Evidence()
    e.fault("stop keepalived on cp1", 100.0)
    e.event("VIP held by cp2", 101.5, True)
    e.took_effect(100.5, 0.01, "cp1 dropped the VIP")
    assert [(ev.at, ev.what) for ev in e.timeline] == [
        (-0.5, "stop keepalived on cp1: sent"), (0.0, "took effect (± 10 ms: cp1 dropped the VIP)"),
        (1.0, "VIP held by cp2")]
    assert e.measurements[-1].value == "+500 ms after the action was sent, ± 10 ms"


def test_address_events_say_when_the_vip_comes_and_goes() -> None:
    from hakit.cluster.stream import change, holds
    shown = ["2: eth0    inet 10.0.0.11/24 brd 10.0.0.255 scope global eth0",
             "2: eth0    inet 10.0.0.100/32 scope global eth0"]
    assert holds(shown, "10.0.0.100") and not holds(shown, "10.0.0.10")
    at = datetime(2026, 11, 26, 14, 15, 25, 643698, tzinfo=UTC).timestamp()
    assert change("[2026-11-26T14:15:25.643698] 2: eth0    inet 10.0.0.100/32 scope global eth0",
                  "10.0.0.100") == (at, True)
    assert change("[2026-11-26T14:15:25.643698] Deleted 2: eth0    inet 10.0.0.100/32 scope global eth0",
                  "10.0.0.100") == (at, False)
    assert change("[2026-11-26T14:15:25.643698] 2: eth0    inet 10.0.0.1000/32 scope global eth0",
                  "10.0.0.100") is None
    assert change("2: eth0    inet 10.0.0.100/32 scope global eth0", "10.0.0.100") is None   # no stamp: not -ts


def test_an_eviction_is_retried_while_a_pdb_refuses_and_the_refusal_raised_at_the_deadline() -> None:
    import time as _time

    from kubernetes.client.rest import ApiException

    from hakit.kube import evict

    class Api:   # the eviction subresource's answers, in order
        def __init__(self, *statuses: int) -> None:
            self.statuses = list(statuses)

        def create_namespaced_pod_eviction(self, name: str, namespace: str, body: dict) -> None:
            if status := self.statuses.pop(0):
                e = ApiException(status=status)
                e.body = '{"message": "unable to create new content in namespace x because it is being terminated"}'
                raise e
    pod = client.V1Pod(metadata=client.V1ObjectMeta(name="p", namespace="ns"))
    assert evict(Api(429, 429, 0), pod, _time.monotonic() + 30) == 2     # type: ignore[arg-type]
    assert evict(Api(404), pod, _time.monotonic() + 30) == 0             # type: ignore[arg-type]
    assert evict(Api(403), pod, _time.monotonic() + 30) == 0             # type: ignore[arg-type]
    with pytest.raises(ApiException) as e:
        evict(Api(429, 429, 429, 0), pod, _time.monotonic() + 0.5)      # type: ignore[arg-type]
    assert e.value.status == 429


def test_a_resolved_alert_inside_a_firing_group_notification_counts_as_resolved() -> None:
    """Alertmanager's payload as captured from the lab's pager: w1 resolved while cp3 of the same
    group still fires, so the notification as a whole says "firing"."""
    from hakit.alerting import Follow

    def alert(node: str, status: str) -> dict:
        return {"status": status, "labels": {"alertname": "KubeNodeNotReady", "node": node}}

    class Pager:
        def notifications(self) -> list:
            return [(now, {"status": "firing", "alerts": [alert("w1", "firing")]}),
                    (now + 9, {"status": "firing", "alerts": [alert("cp3", "firing"), alert("w1", "resolved")]})]

    follow = Follow(None, None, Pager(), "KubeNodeNotReady", {"node": "w1"})  # type: ignore[arg-type]
    now = follow.since
    assert follow.paged() == {"firing", "resolved"}
    follow.trail.labels = {"node": "w2"}
    assert follow.paged() == set()


def test_selectors_are_what_a_rule_reads_outside_absent() -> None:
    from hakit.prometheus import selectors
    assert selectors('100 * (count by (job) (up == 0) / count by (job) (up)) > 10') == ["up"]
    assert selectors('increase((max without (instance) (etcd_x_total{job=~".*etcd.*"}) or 0 * '
                     'absent(etcd_x_total{job=~".*etcd.*"}))[15m:1m]) >= 4') == ['etcd_x_total{job=~".*etcd.*"}']
    assert selectors('absent(up{job="apiserver"} == 1)') == []   # fires because nothing matches
    assert selectors('sum(rate(a_total{l="}"}[5m])) by (le) > on(instance) group_left b') == ['a_total{l="}"}', "b"]


def test_a_boundary_is_as_blurred_as_a_good_request_near_it_takes() -> None:
    from hakit.measure import Timeline
    tl = Timeline("api", 0.1)
    for t, v, took in [(0.0, True, 0.05), (0.1, False, 1.0), (0.5, True, 0.3), (0.6, True, 0.2), (3.0, True, 0.9)]:
        tl.seen(v, t, t + took)
    assert round(tl.latency(0.2), 3) == 0.2   # median of 0.05, 0.3, 0.2; the failure and the far 0.9 s do not count


def test_a_client_outage_that_never_ends_is_a_miss_not_a_pass() -> None:
    """Requests through the VIP that fail until the watch ends have no 'first good one after':
    that is the longest outage, not none."""
    from types import SimpleNamespace

    from hakit.checks.test_failover_api import client_outages
    from hakit.measure import Timeline

    def timeline(*samples: tuple[float, bool]) -> Timeline:
        t = Timeline("API through the VIP", 0.1)
        for at, ok in samples:
            t.seen(ok, at, at + 0.01)
        return t
    fault = SimpleNamespace(injected_at=10.0)
    ended = timeline((9.5, True), (10.1, False), (10.2, False), (10.3, True), (12.0, True))
    assert client_outages(Evidence(), ended, fault, 11.0, 5.0) == []
    never = timeline((9.5, True), (10.1, False), (10.2, False), (17.0, False))
    ev = Evidence()
    assert client_outages(ev, never, fault, 11.0, 5.0) == ["client outage during the fault: still failing after 6.9 s"]
    assert "still failing" in str(ev.measurements)


def test_short_budgets_are_those_below_what_they_allowed_before_the_fault() -> None:
    before = {"kube-system/coredns": 1, "app/web": 2, "gone/probe": 1, "app/frozen": 0}
    now = {"kube-system/coredns": 0, "app/web": 2, "app/frozen": 0, "app/new": 0}
    assert short_budgets(before, now) == {"PDB kube-system/coredns": "allows 0 disruption(s), 1 before the fault"}


def test_a_recorded_pid_is_the_component_only_while_its_start_time_matches(tmp_path: Path) -> None:
    """pid_max is 32768 here: a stopped component's pid was another process's an hour later,
    and `stop` killed it (a test session, once). The state keeps each pid with its start time."""
    import json

    from hakit.lab.paths import LabPaths
    from hakit.lab.procs import State
    state = State(LabPaths(tmp_path))
    state.save({"processes": {}})
    with subprocess.Popen(["sleep", "30"]) as proc:
        try:
            state.set_pid("cp1/etcd", proc.pid)
            assert state.pid("cp1/etcd") == proc.pid and state.pids() == {proc.pid}
            doc = json.loads(state.paths.state_file.read_text())
            doc["processes"]["cp1/etcd"]["started"] -= 1   # the same pid, started at another moment
            state.save(doc)
            assert state.pid("cp1/etcd") is None and state.pids() == set()
        finally:
            proc.kill()
    state.set_pid("cp1/etcd", proc.pid)
    assert state.pid("cp1/etcd") is None, "an exited process is nobody's"
