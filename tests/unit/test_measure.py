"""Measurements: outages, time zero and its uncertainty, boundaries, misses."""

from __future__ import annotations

from pathlib import Path

from kubernetes import client

from hakit import wait
from hakit.inventory import load
from hakit.measure import Watch
from hakit.model import Evidence


def test_watch_outage_spans_from_the_first_bad_probe_to_the_end_of_the_last() -> None:
    values = iter([True, False, RuntimeError("down"), True, True])
    with Watch("probe", lambda: next(values, True), interval=0.01) as w:
        wait.until(lambda: len(w.samples) >= 5, 5, "five samples")
    start, end = w.outage()  # type: ignore[misc]
    assert start == w.samples[1][0] and end >= w.samples[2][0]
    assert w.failures()[0] == 2 and w.first(lambda v: v is True, after=w.samples[2][0]) == w.samples[3][0]


def test_the_probe_runs_a_pause_image_every_worker_already_holds(tmp_path: Path) -> None:
    """An air-gapped kubeadm cluster holds its sandbox image and nothing upstream's: the probe
    must not need a pull (on the kubeadm lab, the upstream default never starts)."""
    from hakit.scenarios.workloads import UPSTREAM_PAUSE, probe_image

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

    from hakit.checks.test_failover_api import judged
    from hakit.measure import Timeline
    from hakit.scenarios.api import client_outages

    def timeline(*samples: tuple[float, bool]) -> Timeline:
        t = Timeline("API through the VIP", 0.1)
        for at, ok in samples:
            t.seen(ok, at, at + 0.01)
        return t
    fault = SimpleNamespace(injected_at=10.0)

    def misses(api: Timeline, ev: Evidence) -> list[str]:
        return judged(ev, client_outages(api, fault, 11.0, "later"), api, fault.injected_at, 5.0)  # type: ignore[arg-type]
    ended = timeline((9.5, True), (10.1, False), (10.2, False), (10.3, True), (12.0, True))
    assert misses(ended, Evidence()) == []
    never = timeline((9.5, True), (10.1, False), (10.2, False), (17.0, False))
    ev = Evidence()
    assert misses(never, ev) == ["client outage during the fault: still failing after 6.9 s"]
    assert "still failing" in str(ev.measurements)
