"""The steady state: what must hold before a fault is injected and again after it is
restored (every control-plane component running and serving, every etcd member healthy,
every node Ready), and the PodDisruptionBudgets' allowance a fault must give back."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException
from urllib3.exceptions import HTTPError

from hakit.cluster.access import Access
from hakit.cluster.components import CONTROL_PLANE_COMPONENTS, render
from hakit.cluster.probes import READYZ, Health, readyz
from hakit.errors import UnreachableError
from hakit.snapshot import node_is_ready


class SteadyState(Access):
    def health(self) -> list[Health]:
        """Every control-plane component, as the host's service manager sees it, plus each
        apiserver's /readyz, each etcd member's health over the network, and every node Ready
        (a node can be left NotReady after a fault elsewhere, e.g. a client pinned to a broken
        apiserver)."""
        with ThreadPoolExecutor(max_workers=8) as pool:
            active = list(pool.map(self._active, [h.name for h in self.inv.control_plane]))
            serving = list(pool.map(self._serving, self.inv.control_plane))
        return [h for group in active + serving for h in group] + self._nodes()

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
        try:
            nodes = client.CoreV1Api(self.api).list_node(_request_timeout=5).items
        except (ApiException, OSError, HTTPError) as e:
            return [Health("cluster", "nodes", False, f"cannot list nodes: {type(e).__name__}")]
        return [Health(n.metadata.name, "node", ready, "" if ready else "NotReady")
                for n in nodes for ready in [node_is_ready(n)]]

    def _active(self, host: str) -> list[Health]:
        """One SSH round trip per host: each component's is-active status, one per line."""
        script = "; ".join(f"( {render(self.inv.fault_control, 'is-active', host, c)} ) >/dev/null 2>&1; echo $?"
                           for c in CONTROL_PLANE_COMPONENTS)
        try:
            codes = self.run(host, script).stdout.split()
        except UnreachableError as e:
            return [Health(host, c, False, str(e)) for c in CONTROL_PLANE_COMPONENTS]
        return [Health(host, c, code == "0", "" if code == "0" else "not running")
                for c, code in zip(CONTROL_PLANE_COMPONENTS, codes, strict=False)]

    def _serving(self, h: Any) -> list[Health]:
        got = readyz(f"https://{h.address}:{self.inv.apiserver_port}")
        api = Health(h.name, READYZ, got == "ok", got)
        endpoint = self.etcd_endpoint(h.name)
        ok, why = self.etcd().health(endpoint) if endpoint else (True, "not an etcd member")
        return [api, Health(h.name, "etcd health", ok, why)]
