"""What a node fault may cost and what must come back after one: PDB arithmetic, evictions."""

from __future__ import annotations

import pytest
from kubernetes import client

from hakit.cluster.probes import Health
from hakit.cluster.steady import short_budgets
from hakit.faults.nodes import pdb_shortfalls


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


def test_short_budgets_are_those_below_what_they_allowed_before_the_fault() -> None:
    before = {"kube-system/coredns": 1, "app/web": 2, "gone/probe": 1, "app/frozen": 0}
    now = {"kube-system/coredns": 0, "app/web": 2, "app/frozen": 0, "app/new": 0}
    assert short_budgets(before, now) == {"PDB kube-system/coredns": "allows 0 disruption(s), 1 before the fault"}


def test_a_node_whose_lease_lapsed_is_not_steady_while_it_still_reads_ready() -> None:
    from datetime import UTC, datetime, timedelta

    from hakit.cluster.steady import node_health, stale_leases
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)

    def lease(name: str, renewed_ago: float | None, duration: int | None = 8) -> client.V1Lease:
        renew = None if renewed_ago is None else now - timedelta(seconds=renewed_ago)
        return client.V1Lease(metadata=client.V1ObjectMeta(name=name),
                              spec=client.V1LeaseSpec(renew_time=renew, lease_duration_seconds=duration))
    stale = stale_leases([lease("w1", 2), lease("w2", 12.4), lease("w3", None), lease("w4", 30, None),
                          lease("w5", 8)], now)
    assert stale == {"w2": 12.4}
    assert node_health("w2", True, stale.get("w2")) == \
        Health("w2", "node", False, "Ready, but its Lease was last renewed 12 s ago")
    assert node_health("w1", True, stale.get("w1")).ok
    assert node_health("w2", False, 12.4).detail == "NotReady"
