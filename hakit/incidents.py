"""Incidents: from a wall of failing checks to the cause, its consequences and the
command that repairs it.

A failing check says which components its evidence is about (`Evidence.about`:
host + component). The dependency model of a kubeadm HA cluster below says what
each component needs; a failing component none of whose needs fails is a cause,
and every finding it explains is folded under it. Causes of one kind that one
repair fixes (keepalived down on every host) make one incident. A fault left in
effect by an interrupted hakit run is always the first incident.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hakit.model import Outcome, Result

# What each component needs, on the same host ("host": reachability) or anywhere ("*").
NEEDS: dict[str, tuple[tuple[str, str], ...]] = {
    "etcd": (("same", "host"),),
    "kube-apiserver": (("same", "etcd"), ("same", "host")),   # stacked etcd: --etcd-servers is the local member
    "kube-controller-manager": (("same", "kube-apiserver"), ("same", "host")),
    "kube-scheduler": (("same", "kube-apiserver"), ("same", "host")),
    "haproxy": (("same", "host"),),
    "keepalived": (("same", "host"),),
    "kubelet": (("same", "host"),),
    # A kubelet reaches the API through the VIP (a control-plane node's through its own apiserver,
    # kubeadm's ControlPlaneKubeletLocalMode), and a long-lived connection stays on the apiserver it
    # first reached: any failing apiserver may be why a node went NotReady.
    "node": (("same", "kubelet"), ("same", "host"), ("*", "kube-apiserver")),
    # Where replicas run and what a drain or node loss would cost: a lost node (any) changes it.
    "workload placement": (("*", "node"),),
    "vip": (("*", "keepalived"), ("*", "haproxy")),
    # The API as clients reach it: through the VIP, and haproxy sends a request to a backend that
    # stopped being ready until its health check has failed `fall` times.
    "api": (("*", "vip"), ("*", "kube-apiserver")),
    "alert-delivery": (("*", "prometheus"), ("*", "alertmanager")),
}
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
# What a finding says of a container that exits as soon as it starts (hakit.cluster.probes):
# its cause is its manifest or its flags, so its repair is not a restart.
EXITS_AT_ONCE = "it exits at once, so a restart will not help"


@dataclass(frozen=True, order=True)
class Component:
    host: str        # "" for what belongs to the cluster as a whole (the VIP, the API as clients see it)
    name: str

    def __str__(self) -> str:
        return f"{self.name} on {self.host}" if self.host else self.name


@dataclass
class Incident:
    cause: str                       # in words: "etcd on cp3", "keepalived on cp1, cp2, cp3"
    components: list[Component]
    findings: list[Result]           # the failing checks it explains, the cause's own first
    repair: str                      # the exact command, or the manual step
    explained: bool = True           # False: no cause found among the failures; listed as they are
    consequences: list[str] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)   # the runbook runs the repair command is made of

    def to_dict(self) -> dict:
        return {"cause": self.cause, "components": [str(c) for c in self.components], "repair": self.repair,
                "explained": self.explained, "checks": [r.check.id for r in self.findings],
                "consequences": self.consequences}


def needs(c: Component, failing: set[Component]) -> set[Component]:
    """The failing components c needs, directly or through others."""
    out: set[Component] = set()
    todo = [c]
    while todo:
        here = todo.pop()
        for where, name in NEEDS.get(here.name, ()):
            for d in failing:
                if d.name == name and d not in out and (where == "*" or d.host == here.host):
                    out.add(d)
                    todo.append(d)
    return out


Run = tuple[str, dict[str, str]]   # (runbook, parameters)


def runs(name: str, hosts: list[str]) -> list[Run]:
    """The runbook runs that repair this kind of cause on these hosts, every parameter filled."""
    if name in CONTROL_PLANE + ("kubelet", "node"):
        component = "kubelet" if name == "node" else name
        return [("control-plane-restart", {"host": h, "component": component}) for h in hosts]
    if name in ("keepalived", "haproxy", "vip"):
        return [("vip-recover", {})]
    if name in ("prometheus", "alertmanager"):   # on a monitoring host the inventory lists; else the manual step
        return [("monitoring-restart", {"host": h, "component": name}) for h in hosts]
    return []


def command(run: Run) -> str:
    return " ".join(["hakit runbook run", run[0], *(f"{k}={v}" for k, v in run[1].items())])


def repair(name: str, hosts: list[str], inventory: Path) -> str:
    """The command that repairs this kind of cause on these hosts, or the manual step."""
    if planned := runs(name, hosts):
        return " && ".join(command(r) for r in planned)
    if name == "host":
        return f"reach {', '.join(hosts)} (console or out-of-band): hakit cannot log in to it over SSH"
    if name in ("prometheus", "alertmanager"):
        return (f"start {name} where it runs (systemd: `systemctl start {name}`; kube-prometheus-stack: "
                f"`kubectl -n monitoring rollout restart statefulset {name}-main`), then `hakit check --property "
                "monitoring`")
    return ""


# How a leftover fault whose run is still alive is marked (fixtures.plugin writes it).
STILL_GOING = "a run still going: it restores its own"


def incidents(results: list[Result], leftovers: list[str], inventory: Path,
              names: dict[str, str] | None = None) -> list[Incident]:
    """The failing results grouped by cause; leftover faults of an interrupted run first.
    `names` maps host addresses to the inventory's host names (a client names what it
    could not reach by address)."""
    names = names or {}
    bad = [r for r in results if r.outcome in (Outcome.FAIL, Outcome.WARN, Outcome.ERROR)]
    about = {id(r): {Component(names.get(h, h), c) for h, c in r.about} for r in bad}
    failing = set().union(*about.values()) if about else set()
    causes = sorted(c for c in failing if not needs(c, failing))
    out: list[Incident] = []
    gone = [f for f in leftovers if STILL_GOING not in f]
    live = [f for f in leftovers if STILL_GOING in f]
    if gone:
        out.append(Incident("a fault injected by an interrupted hakit run is still in effect: " + "; ".join(gone),
                            [], [], f"hakit repair --inventory {inventory}"))
    if live:   # not a crash: nothing to repair, but what was read is a cluster under that fault
        out.append(Incident("another hakit run has a fault in effect while these checks read the cluster: "
                            + "; ".join(live), [], [], "none: that run restores it; audit again once it has ended"))
    taken: set[int] = set()
    for name in dict.fromkeys(c.name for c in causes):   # causes of one kind, one repair: one incident
        group = [c for c in causes if c.name == name]
        explained = [r for r in bad if id(r) not in taken and any(
            c in group or needs(c, failing) & set(group) for c in about[id(r)])]
        taken |= {id(r) for r in explained}
        hosts = sorted({c.host for c in group if c.host})
        cause = f"{name} on {', '.join(hosts)}" if hosts else name
        own = [r for r in explained if about[id(r)] & set(group)]
        rest = [r for r in explained if r not in own]
        planned, fix = runs(name, hosts), repair(name, hosts, inventory) or _check_repair(own + rest)
        if any(EXITS_AT_ONCE in r.message for r in own):   # a restart is what the kubelet keeps doing
            planned, fix = [], (f"fix {name}'s static-pod manifest on {', '.join(hosts)} (/etc/kubernetes/manifests/"
                                f"{name}.yaml): its container exits at once, so a restart will not help; its own "
                                "last words are in the finding (crictl logs)")
        out.append(Incident(cause, group, own + rest, fix, consequences=[f"{r.check.id} {r.message}" for r in rest],
                            runs=planned))
    loose = [r for r in bad if id(r) not in taken]
    if loose:
        out.append(Incident("no single cause explains these", [], loose, _each_repair(loose), explained=False))
    return out


def _check_repair(findings: list[Result]) -> str:
    """For findings one cause explains: the runbooks their checks name, else the first's fix."""
    books = sorted({r.check.runbook for r in findings if r.check.runbook})
    return "; ".join(f"hakit runbook show {b}" for b in books) or findings[0].check.remediation if findings else ""


def _each_repair(findings: list[Result]) -> str:
    """For findings nothing ties together: each check's own repair, named by its id (a
    runbook one of them names is no repair of the others)."""
    def own(r: Result) -> str:
        if r.check.runbook:
            return f"hakit runbook show {r.check.runbook}"
        return " ".join(r.check.remediation.split()).split(". ")[0].rstrip(".")
    return "; ".join(f"{r.check.id}: {own(r)}" for r in findings)


def incident_lines(found: list[Incident]) -> list[str]:
    """The incident view, as the terminal and `hakit diagnose` print it: each cause, what it
    explains, and the command that repairs it."""
    out = []
    for n, i in enumerate(found, 1):
        out.append(f"  INCIDENT {n}: {i.cause}" if i.explained else f"  UNEXPLAINED: {i.cause}")
        if i.findings:
            out.append(f"    failing: {', '.join(r.check.id for r in i.findings)}"
                       + (f" ({len(i.consequences)} of them consequences)" if i.consequences else ""))
        if i.repair:
            out.append(f"    repair:  {i.repair}")
    return out
