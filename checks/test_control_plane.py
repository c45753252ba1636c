"""Control plane: more than one apiserver serves, controller-manager and scheduler
each run more than once with a live leader Lease, and every version keeps the skew policy."""

from __future__ import annotations

import time

from kubernetes import client

from hakit.cluster.probes import readyz, version
from hakit.inventory import Inventory
from hakit.model import Evidence, check
from hakit.snapshot import Snapshot
from hakit.versions import image_version, skew


@check("CP-001", "At least two apiservers serve", property="control-plane", runbook="control-plane-restart",
       remediation="""Restart the apiservers that do not answer /readyz (runbook control-plane-restart);
with one left, any failure of it is an outage.""")
def test_two_apiservers_serve(inventory: Inventory, kube_api: client.ApiClient, evidence: Evidence) -> None:
    """One serving apiserver is a single point of failure."""
    serving = [h.name for h in inventory.control_plane
               if readyz(f"https://{h.address}:{inventory.apiserver_port}", kube_api.configuration.ssl_ca_cert,
                         timeout=5) == "ok"]
    evidence.record("serving apiservers", serving or "none", expected="≥ 2")
    if len(serving) < 2:
        for h in inventory.control_plane:
            if h.name not in serving:
                evidence.about(h.name, "kube-apiserver")
    assert len(serving) >= 2, f"only {len(serving)} apiserver(s) serve: {', '.join(serving) or 'none'}"


def _leader_check(component: str, snapshot: Snapshot, inventory: Inventory, evidence: Evidence,
                  instances: dict[str, str]) -> None:
    """A live leader (its Lease renewed within its duration) and an instance serving on every
    control-plane host; every problem found is named."""
    problems = []
    down = {h: why for h, why in instances.items() if why != "ok"}
    for h in down:
        evidence.about(h, component)
    evidence.record(f"{component} /healthz per host", instances, expected="ok on every control-plane host")
    lease = snapshot.kube_system_leases.get(component)
    if lease is None or not lease.spec.holder_identity:
        problems.append(f"no {component} Lease is held: no leader")
    else:
        age = time.time() - lease.spec.renew_time.timestamp()
        limit = lease.spec.lease_duration_seconds + inventory.thresholds.lease_slack_seconds
        evidence.record(f"{component} leader", lease.spec.holder_identity.split("_")[0])
        evidence.record("lease renewed", f"{age:.1f} s ago", expected=f"< {limit:g} s", ok=age < limit)
        if age >= limit:
            problems.append(f"the {component} Lease was last renewed {age:.0f} s ago (> {limit:g} s): "
                            "the leader is stuck or gone")
    if down:
        problems.append(f"{component} does not serve on " + ", ".join(f"{h} ({why})" for h, why in down.items())
                        + f": {len(instances) - len(down)} instance(s) left to take over")
    assert not problems, "; ".join(problems)


@check("CP-002", "kube-controller-manager serves on every control-plane host, with a live leader",
       property="control-plane",
       runbook="control-plane-restart",
       remediation="""Run kube-controller-manager on every control-plane host with --leader-elect=true;
restart the one whose Lease renewals stopped.""")
def test_controller_manager_leader(snapshot: Snapshot, inventory: Inventory, evidence: Evidence,
                                   elected_instances: dict[str, dict[str, str]]) -> None:
    """Without a live leader no controller reconciles: nothing is rescheduled."""
    _leader_check("kube-controller-manager", snapshot, inventory, evidence,
                  elected_instances["kube-controller-manager"])


@check("CP-003", "kube-scheduler serves on every control-plane host, with a live leader", property="control-plane",
       runbook="control-plane-restart",
       remediation="""Run kube-scheduler on every control-plane host with --leader-elect=true; restart the one
whose Lease renewals stopped.""")
def test_scheduler_leader(snapshot: Snapshot, inventory: Inventory, evidence: Evidence,
                          elected_instances: dict[str, dict[str, str]]) -> None:
    """Without a live leader new pods stay Pending."""
    _leader_check("kube-scheduler", snapshot, inventory, evidence, elected_instances["kube-scheduler"])


@check("CP-004", "Versions keep Kubernetes' skew policy: one apiserver version; nothing newer than it",
       property="control-plane", remediation="""Finish the upgrade that is half done, in kubeadm's order:
`kubeadm upgrade apply` on the first control plane, `kubeadm upgrade node` on the others, then each
node's kubelet (drained first). Never install a kubelet, kube-proxy, controller-manager or scheduler
newer than the oldest apiserver; a kubelet may lag at most three minors, the controller-manager
and scheduler one.""")
def test_version_skew(inventory: Inventory, kube_api: client.ApiClient, snapshot: Snapshot,
                      evidence: Evidence) -> None:
    """Each apiserver's own /version, the controller-manager's and scheduler's static-pod images,
    each node's kubelet and its kube-proxy's image, against the oldest apiserver."""
    apiservers = {h.name: version(f"https://{h.address}:{inventory.apiserver_port}",
                                  kube_api.configuration.ssl_ca_cert, timeout=5) for h in inventory.control_plane}
    others: dict[tuple[str, str], str] = {}
    for component in ("kube-controller-manager", "kube-scheduler"):
        for pod in snapshot.control_plane_pods(component):
            others[(component, pod.spec.node_name or "?")] = image_version(pod.spec.containers[0].image or "")
    for node in snapshot.nodes:
        others[("kubelet", node.metadata.name)] = node.status.node_info.kubelet_version if node.status.node_info else ""
    for pod in snapshot.kube_system_pods:
        if (pod.metadata.labels or {}).get("k8s-app") == "kube-proxy":
            others[("kube-proxy", pod.spec.node_name or "?")] = image_version(pod.spec.containers[0].image or "")
    evidence.record("apiserver versions", apiservers)
    seen: dict[str, set[str]] = {}
    for (component, _), v in others.items():
        seen.setdefault(component, set()).add(v or "unreadable")
    for component, vs in seen.items():
        evidence.record(f"{component} versions", ", ".join(sorted(vs)))
    unread = [h for h, v in apiservers.items() if not v]
    broken = skew({h: v for h, v in apiservers.items() if v}, others)
    assert not unread and not broken, "; ".join(broken + ([f"apiservers not answering /version: {', '.join(unread)}"]
                                                         if unread else []))
