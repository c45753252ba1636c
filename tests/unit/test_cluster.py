"""The cluster layer's commands: kubeadm's stop/start/rejoin, control templates, network faults."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import yaml

from hakit.cluster.components import kubeadm_command, render
from hakit.cluster.network import partition_script, self_healing


def test_kubeadm_commands_use_systemd_for_units_and_manifests_for_static_pods() -> None:
    assert kubeadm_command("stop", "keepalived") == "systemctl stop keepalived"
    assert kubeadm_command("kill", "haproxy") == "systemctl kill --signal=SIGKILL haproxy"
    # a monitoring host's, by Debian's unit names (as provision-monitoring installs them)
    assert kubeadm_command("start", "alertmanager") == "systemctl start prometheus-alertmanager"
    assert kubeadm_command("is-active", "prometheus") == "systemctl is-active --quiet prometheus"
    # started again at boot (provision-api-lb): a unit enabled, a static pod's manifest is enough
    assert kubeadm_command("enable", "keepalived") == "systemctl enable --quiet keepalived"
    assert kubeadm_command("enable", "etcd") == "true"
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


def test_a_crash_looping_container_is_told_with_its_last_words_and_that_a_restart_will_not_help() -> None:
    from hakit.cluster.probes import CONTAINER_LOG_MARK, container_story
    inspected = json.dumps({"status": {"state": "CONTAINER_EXITED", "exitCode": 1, "metadata": {"attempt": 4},
                                       "reason": "Error"}, "info": {"pid": 0}})
    story = container_story(f"{inspected}\n{CONTAINER_LOG_MARK}\nError: unknown flag: --no-such-flag\n",
                            "/etc/kubernetes/manifests/kube-scheduler.yaml")
    assert story == ("its container: exited (exit code 1), restarted 4 time(s); its log: Error: unknown flag: "
                     "--no-such-flag; it exits at once, so a restart will not help: fix "
                     "/etc/kubernetes/manifests/kube-scheduler.yaml (see its log: crictl logs)"), story
    running = json.dumps({"status": {"state": "CONTAINER_RUNNING", "metadata": {"attempt": 0}}})
    assert container_story(f"{running}\n{CONTAINER_LOG_MARK}\n", "m") == "its container: running, restarted 0 time(s)"
    assert container_story("crictl: not JSON", "m") == ""


def test_a_manifest_that_differs_from_the_copy_kubeadm_kept_names_the_lines() -> None:
    from hakit.cluster.probes import kept_diff
    kept = "/etc/kubernetes/tmp/kubeadm-backup-manifests-2026-12-07-10-00-00/kube-scheduler.yaml"
    assert kept_diff(f"{kept}\n+    - --no-such-flag\n") == (
        f"it differs from the copy kubeadm kept ({kept}): +- --no-such-flag")
    assert kept_diff(f"{kept}\n") == "" and kept_diff("") == ""


def test_readings_of_the_steady_state_count_each_thing_and_say_when_it_was_last_seen() -> None:
    from hakit.cluster.steady import Readings
    seq = iter([{"cluster/VIP": "held by no host"}, {"cp1/kube-scheduler": "not running", "cluster/VIP": ""},
                {"cp1/kube-scheduler": "not running"}, {}])
    r = Readings(lambda: next(seq))
    assert [r.steady() for _ in range(3)] == [False, False, False]
    assert r.counted() == {"cp1/kube-scheduler": "not running; in 2 of 3 readings"}
    assert r.steady() and r.counted() == {} and r.waited().startswith("cluster/VIP 0 s, cp1/kube-scheduler 0 s")
