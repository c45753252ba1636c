"""The cluster-wide workload model (hakit.workloads) on hand-made fleets: selectors as the
API server matches them, node loss, drainability under kubectl's rules, budget hygiene."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from kubernetes.client.exceptions import ApiException

from hakit.errors import UnreachableError
from hakit.inventory import Scope
from hakit.kube import matches, pod_requests, quantity
from hakit.listing import listed
from hakit.workloads import Budget, DaemonSet, Fleet, Pod, Workload


def pod(name: str, node: str, labels: dict[str, str], ready: bool = True, owner: tuple[str, str] = ("ReplicaSet", "rs"),
        ns: str = "app", mirror: bool = False) -> Pod:
    return Pod(ns, name, node, labels, ready, owner, mirror, False)


def test_selectors_match_as_the_api_server_does() -> None:
    labels = {"app": "web", "tier": "front"}
    assert matches({}, labels) and not matches(None, labels)
    assert matches({"matchLabels": {"app": "web"}}, labels)
    assert not matches({"matchLabels": {"app": "db"}}, labels)
    assert matches({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "back"]}]}, labels)
    assert not matches({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]}, labels)
    assert matches({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}, labels)
    assert not matches({"matchExpressions": [{"key": "zone", "operator": "Exists"}]}, labels)
    # matchExpressions are not ignored: a selector of expressions alone does not match everything
    assert not matches({"matchExpressions": [{"key": "app", "operator": "In", "values": ["db"]}]}, labels)
    assert not matches({"matchExpressions": [{"key": "app", "operator": "Bogus"}]}, labels)


def test_a_fleet_selects_by_its_label_index_exactly_what_a_scan_matches() -> None:
    """The index is only a shortcut: every kind of selector selects the same pods as trying
    each pod of the namespace would (and never a pod of another namespace)."""
    pods = [pod("a", "n1", {"app": "web", "tier": "front"}), pod("b", "n1", {"app": "web"}),
            pod("c", "n2", {"app": "db", "tier": "back"}), pod("d", "n2", {}),
            pod("e", "n3", {"app": "web"}, ns="other")]
    fleet = Fleet(pods, [], [])
    for selector in [None, {}, {"matchLabels": {"app": "web"}}, {"matchLabels": {"app": "web", "tier": "front"}},
                     {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "db", "web"]}]},
                     {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]},
                     {"matchExpressions": [{"key": "tier", "operator": "Exists"},
                                           {"key": "app", "operator": "In", "values": ["db"]}]},
                     {"matchLabels": {"app": "nothing"}}, {"matchLabels": None, "matchExpressions": None}]:
        want = [p.name for p in pods if p.namespace == "app" and matches(selector, p.labels)]
        assert sorted(p.name for p in fleet.selected("app", selector)) == sorted(want), selector


def web(replicas: int = 2) -> Workload:
    return Workload("Deployment", "app", "web", replicas, {"matchExpressions": [
        {"key": "app", "operator": "In", "values": ["web"]}]}, {"app": "web"})


def test_node_loss_names_the_node_and_the_workload_it_would_take_down() -> None:
    pods = [pod("web-1", "n1", {"app": "web"}), pod("web-2", "n1", {"app": "web"})]
    fleet = Fleet(pods, [], [web()])
    assert fleet.loss_impact({"n1": "n1", "n2": "n2"}) == {"n1": ["Deployment app/web to 0 ready"]}
    spread = Fleet([pod("web-1", "n1", {"app": "web"}), pod("web-2", "n2", {"app": "web"})], [], [web()])
    assert spread.loss_impact({"n1": "n1", "n2": "n2"}) == {}


def test_node_loss_below_a_budget_and_below_a_statefulset_quorum() -> None:
    pods = [pod(f"web-{i}", n, {"app": "web"}) for i, n in enumerate(["n1", "n1", "n2"])]
    budget = Budget("app", "web", {"matchLabels": {"app": "web"}}, allowed=1, desired_healthy=2, expected=3)
    assert (Fleet(pods, [budget], [web(3)]).loss_impact({"n1": "n1"})
            == {"n1": ["Deployment app/web below its PDB (1 < 2)"]})
    db = Workload("StatefulSet", "app", "db", 3, {"matchLabels": {"app": "db"}}, {"app": "db"})
    dbs = [pod(f"db-{i}", n, {"app": "db"}, owner=("StatefulSet", "db")) for i, n in enumerate(["n1", "n1", "n2"])]
    assert Fleet(dbs, [], [db]).loss_impact({"n1": "n1"}) == {"n1": ["StatefulSet app/db below quorum (1 of 3)"]}


def test_drain_blockers_follow_kubectl_and_the_pdb_status() -> None:
    pods = [pod("web-1", "n1", {"app": "web"}), pod("bare", "n2", {}, owner=("", "")),
            pod("ds", "n3", {"app": "web"}, owner=("DaemonSet", "ds")),
            pod("static", "n3", {"app": "web"}, owner=("Node", "n3"), mirror=True)]
    zero = Budget("app", "web", {"matchLabels": {"app": "web"}}, allowed=0, desired_healthy=1, expected=1)
    blocked = Fleet(pods, [zero], [web(1)]).drain_blockers(["n1", "n2", "n3"])
    assert blocked == {"n1": ["PDB app/web allows 0 disruptions (pod app/web-1)"],
                       "n2": ["pod app/bare has no controller (drain needs --force, and it is lost)"]}


def test_budget_problems_and_the_scope() -> None:
    pods = [pod("web-1", "n1", {"app": "web"}), pod("web-2", "n2", {"app": "web"})]
    typo = Budget("app", "wbe", {"matchLabels": {"app": "wbe"}}, allowed=0, desired_healthy=0, expected=0)
    never = Budget("app", "web", {"matchLabels": {"app": "web"}}, allowed=0, desired_healthy=2, expected=2)
    assert Fleet(pods, [typo, never], [web()]).budget_problems() == [
        "PDB app/wbe matches no pod", "PDB app/web can never allow a disruption (needs 2 healthy of 2)"]
    assert Fleet(pods, [], [web()]).budget_problems() == ["Deployment app/web (2 replicas) has no PodDisruptionBudget"]
    scope = Scope(exclude_namespaces=("app",))
    assert not scope.wants("app", {}) and Scope(exclude_labels=(("hakit.io/ignore", "true"),)).wants("x", {})


def test_zone_loss_counts_every_node_of_the_zone() -> None:
    """Spread over two nodes of one zone survives a node loss, not the zone's."""
    pods = [pod("web-1", "a1", {"app": "web"}), pod("web-2", "a2", {"app": "web"})]
    fleet = Fleet(pods, [], [web()])
    assert fleet.loss_impact({"a1": "a1", "a2": "a2", "b1": "b1"}) == {}
    assert fleet.loss_impact({"a1": "a", "a2": "a", "b1": "b"}) == {"a": ["Deployment app/web to 0 ready"]}


class Pages:
    """A LIST endpoint answering with scripted failures first, as an HA apiserver pair can."""

    def __init__(self, *failures: ApiException) -> None:
        self.failures, self.calls = list(failures), []

    def __call__(self, limit: int, _continue: str | None, **_: object) -> SimpleNamespace:
        self.calls.append(_continue)
        if _continue and self.failures:
            raise self.failures.pop(0)
        page = {"items": [{"n": 1}], "metadata": {"continue": "t1"}} if not _continue else {"items": [{"n": 2}]}
        return SimpleNamespace(data=json.dumps(page))


def failure(status: int, retry_after: str | None = None) -> ApiException:
    e = ApiException(status=status, reason="Timeout" if status == 504 else "Expired")
    e.headers = {"Retry-After": retry_after} if retry_after else {}
    return e


def test_listing_through_a_vip_retries_a_lagging_apiserver_and_restarts_an_expired_token() -> None:
    lagging = Pages(failure(504, "0"))   # "Too large resource version": the next apiserver's cache lags
    assert listed(lagging, "pods", lambda d: d["n"]) == [1, 2] and lagging.calls == [None, "t1", "t1"]
    expired = Pages(failure(410))
    assert listed(expired, "pods", lambda d: d["n"]) == [1, 2] and expired.calls == [None, "t1", None, "t1"]
    with pytest.raises(UnreachableError, match="HTTP 504"):
        listed(Pages(*[failure(504, "0")] * 5), "pods", lambda d: d["n"])


def test_requests_are_counted_as_the_scheduler_counts_them() -> None:
    spec = {"containers": [{"resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}},
                           {"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}, {}],
            "initContainers": [{"resources": {"requests": {"cpu": "2", "memory": "1e3"}}}],
            "overhead": {"cpu": "10m"}}
    assert pod_requests(spec) == (2010, 64 * 2 ** 20 + 2 ** 30)   # the init container's CPU, the sum's memory
    assert quantity("1.5Gi") == 1.5 * 2 ** 30 and quantity("junk") == 0 and quantity(3) == 3


def test_a_node_whose_pods_the_others_cannot_take_is_named_and_bare_or_daemon_pods_do_not_count() -> None:
    """Three 16-CPU nodes, each with one 10-CPU replica: no node left has 10 CPU free. A
    DaemonSet's pod, a mirror pod and a bare pod are not recreated elsewhere: they take room
    where they run, and strand nothing when their node goes."""
    def big(name: str, node: str, cpu: int, owner: tuple[str, str] = ("ReplicaSet", "rs"), mirror: bool = False) -> Pod:
        return Pod("app", name, node, {}, True, owner, mirror, False, (cpu, 2 ** 30))
    alloc = {n: (16000, 64 * 2 ** 30, 110) for n in ("w1", "w2", "w3")}
    tight = Fleet([big(f"hog-{n}", n, 10000) for n in alloc], [], [])
    lost = tight.room_after_loss(alloc)
    assert sorted(lost) == ["w1", "w2", "w3"] and "1 of its 1 recreated pods find no node with room (app/hog-w1; " \
        "10 CPU, 1.0 GiB requested)" == lost["w1"], lost
    two = {n: (16000, 64 * 2 ** 30, 110) for n in ("w1", "w2")}
    stays = Fleet([big("ds", "w1", 3000, ("DaemonSet", "agent")), big("bare", "w1", 3000, ("", "")),
                   big("mirror", "w1", 3000, ("Node", "w1"), mirror=True), big("web", "w2", 8000)], [], [])
    assert list(stays.room_after_loss(two)) == ["w2"], "w1's 9 CPU of pods nobody recreates must not move to w2"
    assert Fleet([big("web", "w2", 6000), big("db", "w1", 6000)], [], []).room_after_loss(two) == {}
    slots = Fleet([big(f"p{i}", "w1", 0) for i in range(3)] + [big("q", "w2", 0)], [], [])
    assert "2 of its 3" in slots.room_after_loss({"w1": (1000, 2 ** 40, 3), "w2": (1000, 2 ** 40, 2)})["w1"]


def test_a_daemonset_short_of_its_nodes_names_where_its_pod_is_not_ready() -> None:
    agent = [Pod("kube-system", f"kube-proxy-{n}", n, {}, n != "w2", ("DaemonSet", "kube-proxy"), False, False)
             for n in ("w1", "w2", "w3")]
    ok, short = (DaemonSet("kube-system", "kube-proxy", 3, 3, r) for r in (3, 2))
    assert Fleet(agent, [], [], daemonsets=[ok]).agents_down() == {}
    assert Fleet(agent, [], [], daemonsets=[short]).agents_down() == {
        "kube-system/kube-proxy": "2 of 3 Ready; not Ready on w2"}
    missing = DaemonSet("kube-flannel", "kube-flannel-ds", 4, 3, 3)
    assert Fleet([], [], [], daemonsets=[missing]).agents_down() == {
        "kube-flannel/kube-flannel-ds": "3 of 4 Ready; 1 node(s) without a pod of it"}
