"""Kubernetes and Alertmanager objects a fault changes and its undo puts back: cordons,
drains, a probe namespace, silences."""

from __future__ import annotations

from kubernetes import client
from kubernetes.client.rest import ApiException

from hakit import kube
from hakit.cluster.access import Access
from hakit.prometheus import Alertmanager


class Objects(Access):
    def cordon(self, host: str) -> None:
        client.CoreV1Api(self.api).patch_node(host, {"spec": {"unschedulable": True}})

    def uncordon(self, host: str) -> None:
        client.CoreV1Api(self.api).patch_node(host, {"spec": {"unschedulable": None}})

    def undrain(self, host: str, deployments: list[str]) -> list[str]:
        """Undo a drain: the node takes pods again, and the Deployments it moved spread again
        (see kube.rebalance). Returns those restarted."""
        self.uncordon(host)
        return kube.rebalance(self.api, {tuple(d.split("/", 1)) for d in deployments})  # type: ignore[misc]

    def delete_namespace(self, namespace: str) -> None:
        """Remove a namespace hakit made (its probe workload); gone already is fine."""
        try:
            client.CoreV1Api(self.api).delete_namespace(namespace, propagation_policy="Background")
        except ApiException as e:
            if e.status != 404:
                raise

    def expire_silences(self, url: str, comment: str) -> None:
        """Expire the Alertmanager silences hakit created with this comment (one run's)."""
        am = Alertmanager(url)
        for s in am.silences():
            if s.get("createdBy") == "hakit" and s.get("comment") == comment and s["status"]["state"] != "expired":
                am.expire(s["id"])
