"""What taking a node away would cost: a node is only stopped when it is Ready and
every PodDisruptionBudget covering its pods can afford to lose them all."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kubernetes import client

from hakit.kube import matches
from hakit.snapshot import is_ready

if TYPE_CHECKING:
    from hakit.faults.kinds import StopComponent


def pdb_shortfalls(pdbs: list[client.V1PodDisruptionBudget], pods: list[client.V1Pod]) -> list[str]:
    """PDBs that cannot afford losing these pods at once: 'ns/name: 2 pods here, 1 disruption allowed'."""
    out = []
    for pdb in pdbs:
        selector = client.ApiClient().sanitize_for_serialization(pdb.spec.selector)
        covered = [p for p in pods if p.metadata.namespace == pdb.metadata.namespace
                   and matches(selector, p.metadata.labels or {})]
        allowed = (pdb.status.disruptions_allowed or 0) if pdb.status else 0
        if len(covered) > allowed:
            out.append(f"PDB {pdb.metadata.namespace}/{pdb.metadata.name}: {len(covered)} of its pods on this node, "
                       f"{allowed} disruption(s) allowed")
    return out


def require_node_can_go(fault: StopComponent) -> None:
    core = client.CoreV1Api(fault.control.api)
    node = core.read_node(fault.host)
    if not is_ready(node):
        raise fault.refuse(f"node {fault.host} is not Ready")
    pods = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={fault.host}").items
    pdbs = client.PolicyV1Api(fault.control.api).list_pod_disruption_budget_for_all_namespaces().items
    short = pdb_shortfalls(pdbs, [p for p in pods if p.metadata.deletion_timestamp is None])
    if short:
        raise fault.refuse("losing the node would leave a PDB unsatisfiable: " + "; ".join(short))
