"""The steady state, defined once: what must hold before a fault is injected (the fault
guard), again after it is restored (the settle before the next check), and before each
lab or kubeadm test: every control-plane component running and serving, every etcd member
healthy, exactly one host holding the VIP, every node Ready with its Lease renewed, and every
PodDisruptionBudget allowing what it allowed before the fault."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException
from urllib3.exceptions import HTTPError

from hakit import hosts, wait
from hakit.cluster.access import Access
from hakit.cluster.components import CONTROL_PLANE_COMPONENTS, render
from hakit.cluster.probes import READYZ, Health, readyz
from hakit.errors import UnreachableError
from hakit.snapshot import is_ready


def short_budgets(before: dict[str, int], now: dict[str, int]) -> dict[str, str]:
    """The PDBs allowing fewer disruptions now than before the fault, each with why (one
    deleted since, with its namespace, is not waited for)."""
    return {f"PDB {k}": f"allows {now[k]} disruption(s), {v} before the fault"
            for k, v in before.items() if k in now and now[k] < v}


def stale_leases(leases: list[client.V1Lease], now: datetime) -> dict[str, float]:
    """Node Leases not renewed within their own duration, name -> seconds since the last
    renewal. A node whose kubelet has stopped renewing still reads Ready until the
    node-lifecycle controller's grace period runs out (16 s in the lab, 50 s on kubeadm):
    the Lease says so first, so a settle does not end on a node about to go NotReady."""
    out = {}
    for lease in leases:
        spec = lease.spec
        if spec is None or spec.renew_time is None or not spec.lease_duration_seconds:
            continue   # never renewed yet: the node's Ready condition speaks for it
        age = (now - spec.renew_time).total_seconds()
        if age > spec.lease_duration_seconds:
            out[lease.metadata.name] = age
    return out


def node_health(name: str, ready: bool, stale_for: float | None) -> Health:
    if not ready:
        return Health(name, "node", False, "NotReady")
    if stale_for is not None:
        return Health(name, "node", False, f"Ready, but its Lease was last renewed {stale_for:.0f} s ago")
    return Health(name, "node", True, "")


def said(unsteady: dict[str, str]) -> str:
    """What is not steady, as a refusal or a wait names it: "cp3/kube-scheduler (not running)"."""
    return ", ".join(f"{k} ({v})" if v else k for k, v in unsteady.items())


class Readings:
    """Successive readings of what is unsteady, for a wait on the steady state: the last one,
    in how many each thing was seen, and when it was last seen (from the first reading)."""

    def __init__(self, read: Callable[[], dict[str, str]]) -> None:
        self.read, self.last, self.n = read, {}, 0
        self.seen: Counter[str] = Counter()
        self.began, self.last_seen = time.monotonic(), {}

    def steady(self) -> bool:
        """One more reading; whether it found nothing unsteady."""
        self.last = self.read()
        self.n += 1
        self.seen.update(self.last.keys())
        self.last_seen.update(dict.fromkeys(self.last, time.monotonic()))
        return not self.last

    def counted(self) -> dict[str, str]:
        """The last reading, each with in how many readings it was unsteady."""
        return {k: f"{v + '; ' if v else ''}in {self.seen[k]} of {self.n} readings" for k, v in self.last.items()}

    def waited(self) -> str:
        """What was ever unsteady, each with when last seen so: "cp1/node 40 s"."""
        return ", ".join(f"{k} {at - self.began:.0f} s" for k, at in sorted(self.last_seen.items(), key=lambda i: i[1]))


class SteadyState(Access):
    def health(self) -> list[Health]:
        """Every control-plane component, as the host's service manager sees it, plus each
        apiserver's /readyz, each etcd member's health over the network, one VIP holder (read
        in the same SSH round trip), and every node Ready (a node can be left NotReady after a
        fault elsewhere, e.g. a client pinned to a broken apiserver)."""
        with ThreadPoolExecutor(max_workers=8) as pool:
            active = list(pool.map(self._active, [h.name for h in self.inv.control_plane]))
            serving = list(pool.map(self._serving, self.inv.control_plane))
        holders = [h.name for h, (_, holds) in zip(self.inv.control_plane, active, strict=True) if holds]
        vip = Health("cluster", "VIP", len(holders) == 1,
                     "" if len(holders) == 1 else f"held by {', '.join(holders) or 'no host'}")
        return [h for group, _ in active for h in group] + [h for g in serving for h in g] + [vip] + self._nodes()

    def unsteady(self, health: list[Health] | None = None, budgets: dict[str, int] | None = None,
                 beside: str | None = None) -> dict[str, str]:
        """What is not in the steady state now, 'host/component' -> why; empty when it holds.
        `beside`: the host of a fault held on purpose meanwhile (its release waits for its own);
        `budgets`: each PDB's disruptions allowed before a fault, which must come back."""
        health = self.health() if health is None else health
        now = {f"{h.host}/{h.component}": h.detail for h in health if not h.ok and h.host != beside}
        if not now and budgets:
            try:
                now = short_budgets(budgets, self.disruptions_allowed())
            except (ApiException, OSError, HTTPError) as e:   # a moment's error is waited out, not a crash
                now = {"PDBs": f"cannot be listed: {type(e).__name__}"}
        return now

    def unsteady_after(self, seconds: float, *, beside: str | None = None) -> dict[str, str]:
        """What is still not steady after waiting up to `seconds` for it; empty once it holds.
        A steady state read once is a set of readings taken over a second or two: a VIP moving
        between two of them reads as held by nobody, a Lease renewed a moment late as lapsed,
        a container restarted after a crash is gone for the kubelet's back-off (10, 20, 40 s).
        Each thing still unsteady says in how many of the readings it was: a component down
        throughout is not one flapping."""
        readings = Readings(lambda: self.unsteady(beside=beside))
        try:
            wait.until(readings.steady, seconds, "a steady state", interval=1.0)
        except wait.WaitTimeout:
            pass
        return readings.counted()

    def wait_steady(self, timeout: float, what: str, *, budgets: dict[str, int] | None = None,
                    beside: str | None = None, interval: float = 1.0) -> str:
        """Until unsteady() is empty, else WaitTimeout saying what is not. Returns what it waited
        for, each with when it was last seen unsteady ("cp1/node 40 s"): where a slow run's time goes."""
        readings = Readings(lambda: self.unsteady(budgets=budgets, beside=beside))
        wait.until(readings.steady, timeout, what, interval=interval, why=lambda: said(readings.last))
        return readings.waited()

    def disruptions_allowed(self) -> dict[str, int]:
        """Each PodDisruptionBudget's disruptions allowed now, by 'namespace/name': what a
        fault must give back before the next one (a budget still short after an outage makes
        the next node fault refuse, and a real drain hang). Not those of a namespace being
        deleted (a probe's, whose pods on a lost node go only when it returns): they never will."""
        pdbs = client.PolicyV1Api(self.api).list_pod_disruption_budget_for_all_namespaces(_request_timeout=10).items
        going = {n.metadata.name for n in client.CoreV1Api(self.api).list_namespace(_request_timeout=10).items
                 if n.status and n.status.phase == "Terminating"}
        return {f"{b.metadata.namespace}/{b.metadata.name}": (b.status.disruptions_allowed or 0) if b.status else 0
                for b in pdbs if b.metadata.namespace not in going}

    def _nodes(self) -> list[Health]:
        """Each node Ready, and renewing its Lease (kube-node-lease holds one per node)."""
        try:
            nodes = client.CoreV1Api(self.api).list_node(_request_timeout=5).items
            leases = client.CoordinationV1Api(self.api).list_namespaced_lease("kube-node-lease",
                                                                              _request_timeout=5).items
        except (ApiException, OSError, HTTPError) as e:
            return [Health("cluster", "nodes", False, f"cannot list nodes: {type(e).__name__}")]
        stale = stale_leases(leases, datetime.now(UTC))
        return [node_health(n.metadata.name, is_ready(n), stale.get(n.metadata.name)) for n in nodes]

    def _active(self, host: str) -> tuple[list[Health], bool]:
        """One SSH round trip per host: each component's is-active status, one per line, then
        the host's addresses; (health, whether it holds the VIP)."""
        script = "; ".join(f"( {render(self.inv.fault_control, 'is-active', host, c)} ) >/dev/null 2>&1; echo $?"
                           for c in CONTROL_PLANE_COMPONENTS) + "; echo addresses; ip -o -4 addr show"
        try:
            codes, _, addresses = self.run(host, script).stdout.partition("addresses\n")
        except UnreachableError as e:
            return [Health(host, c, False, str(e)) for c in CONTROL_PLANE_COMPONENTS], False
        return ([Health(host, c, code == "0", "" if code == "0" else "not running")
                 for c, code in zip(CONTROL_PLANE_COMPONENTS, codes.split(), strict=False)],
                self.inv.vip in hosts.ipv4_addresses(addresses))

    def _serving(self, h: Any) -> list[Health]:
        got = readyz(f"https://{h.address}:{self.inv.apiserver_port}")
        api = Health(h.name, READYZ, got == "ok", got)
        endpoint = self.etcd_endpoint(h.name)
        ok, why = self.etcd().health(endpoint) if endpoint else (True, "not an etcd member")
        return [api, Health(h.name, "etcd health", ok, why)]
