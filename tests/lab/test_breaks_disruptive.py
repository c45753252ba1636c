"""Break the lab so that a property really does not hold, and see the matching
disruptive check fail with a message that names the cause (then pass again)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from kubernetes import client

from breaking import assert_breaks, file_changed, lab_settled, member_removed, run_checks, stopped, tightened
from hakit import wait
from hakit.lab.netns import Lab

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("settled")]


def test_vip_d01_fails_when_only_the_holder_runs_keepalived(lab: Lab, tmp_path: Path) -> None:
    [holder] = lab.vip_holders()
    others = [f"{h.name}/keepalived" for h in lab.control_planes if h.name != holder]
    assert_breaks(lab, tmp_path, "VIP-D01", lambda: stopped(lab, *others),
                  "no other host runs keepalived to take the VIP", disruptive=True)


def test_vip_d02_fails_when_the_track_script_ignores_haproxy(lab: Lab, tmp_path: Path) -> None:
    [holder] = lab.vip_holders()
    script = lab.paths.etc(holder, "keepalived", "check_apiserver.sh")
    assert_breaks(lab, tmp_path, "VIP-D02", lambda: file_changed(script, lambda _: "#!/bin/sh\nexit 0\n"),
                  "track script did not fail when haproxy stopped", within=180, disruptive=True)


def test_etcd_d01_fails_on_a_two_member_etcd(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "ETCD-D01", lambda: member_removed(lab, "cp3"),
                  "2 of 2 voting etcd members are healthy; one fewer loses quorum", within=60, disruptive=True)


@contextmanager
def single_replica_on(api: client.ApiClient, node: str) -> Iterator[None]:
    """CoreDNS (a critical workload of the lab's inventory) cut to one replica, on `node`."""
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)

    def placed() -> list[str]:
        pods = core.list_namespaced_pod("kube-system", label_selector="k8s-app=kube-dns").items
        return sorted(p.spec.node_name for p in pods
                      if p.status.phase == "Running" and not p.metadata.deletion_timestamp)
    apps.patch_namespaced_deployment("coredns", "kube-system", {"spec": {"replicas": 1, "template": {"spec": {
        "nodeSelector": {"kubernetes.io/hostname": node}}}}})
    try:
        wait.until(lambda: placed() == [node], 90, f"one CoreDNS pod, on {node}")
        yield
    finally:
        apps.patch_namespaced_deployment("coredns", "kube-system", {"spec": {"replicas": 2, "template": {"spec": {
            "nodeSelector": None}}}})
        wait.until(lambda: len(placed()) == 2, 90, "two CoreDNS pods again")


def test_wl_d01_fails_when_a_critical_workload_has_one_replica(lab: Lab, api: client.ApiClient,
                                                               tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "WL-D01", lambda: single_replica_on(api, "w3"),
                  "PDB kube-system/coredns: 1 of its pods on this node, 0 disruption(s) allowed", within=90,
                  disruptive=True)


TIGHT = {"vip_failover_seconds": 0.5, "etcd_leader_election_seconds": 0.05, "controller_failover_seconds": 2}


def test_failovers_slower_than_their_slo_fail_through_the_measured_figure(lab: Lab, tmp_path: Path) -> None:
    """One run under SLOs no failover meets: each check fails through what it measured (the
    figure beyond the SLO), not through a guard or a timeout. (They pass under the lab's own
    SLOs in test_disruptive's full audit, so the run is not repeated around the break.)"""
    inventory = tightened(lab, tmp_path / "inventory.yaml", **TIGHT)
    code, results = run_checks(inventory, tmp_path, "VIP-D03", "ETCD-D02", "CP-D01", "CP-D02", disruptive=True)
    causes = {"VIP-D03": "clients through the VIP saw longer outages than the 0.5 s SLO",
              "ETCD-D02": "a new etcd leader took", "CP-D01": "a new kube-controller-manager took the Lease",
              "CP-D02": "a new kube-scheduler took the Lease"}
    assert code == 1
    for check_id, cause in causes.items():
        assert results[check_id]["outcome"] == "fail" and cause in results[check_id]["message"], results[check_id]


def test_api_d01_fails_when_haproxy_keeps_a_stopped_apiserver_in_its_pool(lab: Lab, tmp_path: Path) -> None:
    """Health checks every 30 s, and no second try on another server: clients reach the stopped
    apiserver for as long as it is down. (API-D01 passes in test_disruptive's full audit.)"""
    inventory = tightened(lab, tmp_path / "inventory.yaml", vip_failover_seconds=3)

    def slow_checks(text: str) -> str:
        assert "option                  redispatch\n" in text, "the lab's haproxy.cfg changed: update this break"
        return (text.replace("option                  redispatch\n", "")
                .replace("retries                 1", "retries 0")
                .replace("default-server inter 1s fall 2 rise 2", "default-server inter 30s fall 3 rise 2"))

    def restart(host: str) -> None:
        lab.host(host).stop("haproxy")
        lab.host(host).start("haproxy")

    with ExitStack() as stack:   # on every host: the VIP may move while haproxy restarts
        for h in lab.control_planes:
            stack.enter_context(file_changed(lab.paths.etc(h.name, "haproxy", "haproxy.cfg"), slow_checks,
                                             lambda n=h.name: restart(n)))
        lab_settled(lab)
        code, results = run_checks(inventory, tmp_path, "API-D01", disruptive=True)
    assert code == 1 and "haproxy did not take it out of the pool in time" in results["API-D01"]["message"], \
        results["API-D01"]
    lab_settled(lab)


@contextmanager
def keepalived_slower_than_its_config(lab: Lab) -> Iterator[None]:
    """Every keepalived running with advert_int 2 while its keepalived.conf on disk says 1 (an
    edit never reloaded): a backup declares the master down after ~6 s, not the ~3.5 s the
    config promises."""
    hosts = [h.name for h in lab.spec.control_plane_hosts]
    confs = {h: lab.paths.etc(h, "keepalived", "keepalived.conf") for h in hosts}
    originals = {h: c.read_text() for h, c in confs.items()}
    assert all("advert_int 1\n" in text for text in originals.values()), originals

    def restart_all() -> None:
        for h in hosts:
            lab.host(h).stop("keepalived")
        for h in hosts:
            lab.host(h).start("keepalived")

    try:
        for h, c in confs.items():
            c.write_text(originals[h].replace("advert_int 1\n", "advert_int 2\n"))
        restart_all()
        lab_settled(lab)   # one VIP holder: each keepalived has read advert_int 2 (a start returns before)
        for h, c in confs.items():
            c.write_text(originals[h])
        yield
    finally:
        for h, c in confs.items():
            c.write_text(originals[h])
        restart_all()
        lab_settled(lab)


def test_vip_d03_fails_when_keepalived_is_slower_than_its_vrrp_bound(lab: Lab, tmp_path: Path) -> None:
    """The client SLO loosened so the VRRP bound is what judges: the move takes three adverts of
    2 s, the bound computed from the config on disk allows three of 1 s."""
    inventory = tightened(lab, tmp_path / "inventory.yaml", vip_failover_seconds=30)
    with keepalived_slower_than_its_config(lab):
        code, results = run_checks(inventory, tmp_path, "VIP-D03", disruptive=True)
    assert code == 1 and "beyond the VRRP master-down bound" in results["VIP-D03"]["message"], results["VIP-D03"]
