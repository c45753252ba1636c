"""The netns lab: a real HA control plane on one machine, one network namespace per host.
`Lab` is the Python API that the CLI, the checks' own tests and the fault layer use.

    lab = Lab.load()                 # the lab described by the state file
    lab.host("cp1").stop("etcd")     # fault hooks are plain methods on hosts

Lab and LabHost stay together (a little over 300 lines): a host's hooks are the lab's
processes and namespaces, and up/down are the order those are made and removed in.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from hakit import wait
from hakit.errors import HakitError, LabError
from hakit.lab import binaries, net, procs
from hakit.lab.components import Component, components
from hakit.lab.paths import LabPaths
from hakit.lab.procs import EXIT_MARKER
from hakit.lab.topology import BULK, WORKER, Host, LabSpec
from hakit.paths import lab_dir

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ComponentStatus:
    host: str
    component: str
    pid: int | None
    address: str
    healthy: bool
    detail: str


class LabHost:
    """One lab host, with the fault hooks the disruptive checks use."""

    def __init__(self, lab: Lab, host: Host) -> None:
        self.lab, self.spec = lab, host

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def address(self) -> str:
        return self.spec.address

    def _component(self, name: str) -> Component:
        for comp in self.lab.components:
            if comp.host == self.name and comp.name == name:
                return comp
        raise LabError(f"{self.name} runs no {name}")

    def pid(self, component: str) -> int | None:
        comp = self._component(component)
        return self.lab.state.pid(comp.key)

    def is_running(self, component: str) -> bool:
        return self.pid(component) is not None

    def start(self, component: str, extra_args: tuple[str, ...] = ()) -> int:
        """Start a component (a no-op when it already runs); extra_args override its
        flags, e.g. --initial-cluster-state=existing for an etcd member re-added."""
        pid = self.pid(component)
        if pid:
            return pid
        comp = self._component(component)
        return procs.start(replace(comp, argv=comp.argv + extra_args), self.spec.netns, self.lab.paths,
                           self.lab.state)

    def stop(self, component: str, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM), as `systemctl stop` would do."""
        procs.stop(self.pid(component), timeout)

    def kill(self, component: str) -> None:
        """SIGKILL: the process gets no chance to say goodbye (keepalived sends no priority-0 advert)."""
        procs.stop(self.pid(component), timeout=5.0, sig=signal.SIGKILL)

    def crash(self) -> None:
        """The whole host dies at once: SIGKILL every process in its namespace."""
        for pid in net.netns_pids(self.spec.netns):
            procs.signal_group(pid, signal.SIGKILL)

    def restart_all(self) -> None:
        for comp in self.lab.components:
            if comp.host == self.name:
                self.start(comp.name)

    def link_down(self) -> None:
        net.set_link(self.spec, up=False)

    def link_up(self) -> None:
        net.set_link(self.spec, up=True)

    @property
    def link_is_up(self) -> bool:
        return net.link_is_up(self.spec)

    def partition(self) -> None:
        net.partition(self.lab.spec, self.spec)

    def heal(self) -> None:
        net.heal(self.spec)

    @property
    def is_partitioned(self) -> bool:
        return net.is_partitioned(self.spec)

    @property
    def holds_vip(self) -> bool:
        return net.holds_address(self.spec, self.lab.spec.vip)

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """Run a command inside the host's namespace (not over SSH)."""
        return net.sh(*argv, netns=self.spec.netns, check=False)


class Lab:
    def __init__(self, spec: LabSpec, paths: LabPaths) -> None:
        self.spec, self.paths = spec, paths
        self.state = procs.State(paths)
        self.components = components(spec, paths)

    @classmethod
    def load(cls, root: Path | None = None) -> Lab:
        """The lab recorded in the state file; LabError when there is none."""
        paths = LabPaths(root or lab_dir())
        doc = procs.State(paths).load()
        if "spec" not in doc:
            raise LabError(f"no lab at {paths.root} (run `hakit lab up`)")
        return cls(LabSpec(**doc["spec"]), paths)

    def host(self, name: str) -> LabHost:
        return LabHost(self, self.spec.host(name))

    @property
    def control_planes(self) -> list[LabHost]:
        return [LabHost(self, h) for h in self.spec.control_plane_hosts]

    @property
    def workers(self) -> list[LabHost]:
        return [LabHost(self, h) for h in self.spec.worker_hosts]

    def vip_holders(self) -> list[str]:
        return [h.name for h in self.control_planes if h.holds_vip]

    def api(self):  # type: ignore[no-untyped-def]
        from hakit.kube import api_client
        return api_client(self.paths.admin_kubeconfig)

    # --- lifecycle -------------------------------------------------------------

    def up(self, progress: Progress = print, timeout: float = 180.0) -> None:
        """Bring every host and component up, waiting for each layer to be healthy."""
        gaps = binaries.missing()
        if gaps:
            raise LabError("missing: " + "; ".join(f"{m.program} ({m.fix})" for m in gaps))
        self.paths.root.mkdir(parents=True, exist_ok=True)
        # Record the spec first: if this process dies from here on, `down` can clean up.
        self.state.save({"spec": self.spec.to_dict(), "processes": {}, "created": time.time()})
        deadline = time.monotonic() + timeout
        progress(f"provisioning PKI and configs under {self.paths.root}")
        from hakit.lab.provision import provision  # jinja2 and more: not for every ctl call
        provision(self.spec, self.paths)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
        progress(f"creating {len(self.spec.hosts)} hosts on {self.spec.subnet} (bridge {self.spec.bridge})")
        net.create(self.spec)
        self._start_layer(["sshd", "etcd"], self.spec.control_plane_hosts, progress, deadline)
        self._start_layer(["kube-apiserver"], self.spec.control_plane_hosts, progress, deadline)
        self._start_layer(["haproxy", "keepalived"], self.spec.control_plane_hosts, progress, deadline)
        self._wait("the VIP to be held by exactly one host", lambda: len(self.vip_holders()) == 1, deadline)
        progress("registering nodes, RBAC, control-plane mirror pods and CoreDNS")
        from kubernetes.client.exceptions import ApiException  # here: `hakit.lab.ctl` must start fast

        from hakit.lab import bootstrap
        api = self.api()
        try:
            bootstrap.rbac(api)
            bootstrap.nodes(api, self.spec)
            for host in self.spec.control_plane_hosts:
                bootstrap.mirror_pods(api, host, [c for c in self.components if c.host == host.name])
            bootstrap.coredns(api)
            bootstrap.kubeadm_config(api, self.spec)
        except ApiException as e:
            raise LabError(f"registering the lab's API objects failed: HTTP {e.status} {e.reason}") from None
        kubelets = [h for h in self.spec.hosts if h.role in ("control-plane", WORKER, BULK)]
        self._start_layer(["kube-controller-manager", "kube-scheduler"], self.spec.control_plane_hosts,
                          progress, deadline)
        self._start_layer(["sshd", "kwok"], kubelets, progress, deadline)
        self._start_layer(["sshd", "pager", "alertmanager", "pushgateway", "kube-state-metrics"],
                          self.spec.alertmanager_hosts, progress, deadline)   # the monitoring host is the first
        self._start_layer(["prometheus"], [self.spec.monitoring_host], progress, deadline)
        progress("waiting for the alerting pipeline: every target scraped, Watchdog in Alertmanager")
        self._wait("the monitoring pipeline", self._monitoring_ready, deadline)
        progress("taking a first etcd snapshot into backups/ (a well-run cluster has one)")
        self.etcd_snapshot()
        from hakit.lab import inventory
        inventory.write(self)
        progress(f"inventory written to {self.paths.inventory}")

    def _start_layer(self, names: list[str], hosts: list[Host], progress: Progress, deadline: float) -> None:
        todo = [c for c in self.components
                if c.name in names and c.host in {h.name for h in hosts}]
        for comp in todo:
            self.host(comp.host).start(comp.name)
        progress(f"started {', '.join(names)} on {', '.join(h.name for h in hosts)}; waiting for health")

        def ready() -> bool:
            statuses = [self._component_status(c) for c in todo]
            for s in statuses:  # a crash-looping component will not heal by waiting: say why at once
                why = self._exit_reason(s.host, s.component)
                if s.pid is None or why:
                    raise LabError(f"{s.host}/{s.component} exited: {why or 'no output'}")
            return all(s.healthy for s in statuses)

        self._wait(f"{', '.join(names)} to be healthy", ready, deadline,
                   lambda: "; ".join(f"{s.host}/{s.component}: {s.detail}" for s in map(self._component_status, todo)
                                     if not s.healthy))

    def _exit_reason(self, host: str, component: str) -> str | None:
        """The last line a component printed before its supervisor saw it exit, if it did."""
        text = self.paths.log(host, component).read_text(errors="replace")
        lines = text[text.rfind("--- hakit: starting"):].splitlines()
        for i, line in enumerate(lines):
            if line.startswith(EXIT_MARKER):
                return lines[i - 1][:300] if i > 1 else line
        return None

    def _wait(self, what: str, ready: Callable[[], bool], deadline: float,
              why: Callable[[], str] | None = None) -> None:
        try:
            wait.until(ready, max(deadline - time.monotonic(), 0.0), what, why=why)
        except wait.WaitTimeout as e:
            raise LabError(f"{e} (logs under {self.paths.root}/hosts/*/log)") from None

    def _component_status(self, comp: Component) -> ComponentStatus:
        pid = self.state.pid(comp.key)
        host = self.spec.host(comp.host)
        if not procs.alive(pid):
            return ComponentStatus(comp.host, comp.name, None, host.address, False, "not running")
        from hakit.lab.health import probe  # requests: not for every ctl call
        ok, detail = probe(comp, str(self.paths.pki / "ca.crt"))
        if comp.name == "keepalived" and ok:
            detail = "MASTER (holds the VIP)" if net.holds_address(host, self.spec.vip) else "BACKUP"
        return ComponentStatus(comp.host, comp.name, pid, host.address, ok, detail)

    def _monitoring_ready(self) -> bool:
        from hakit.prometheus import Alertmanager, Prometheus
        mon = self.spec.monitoring_host.address
        try:
            targets = Prometheus(f"http://{mon}:9090").targets()
            watchdog = Alertmanager(f"http://{mon}:9093").alerts(filter="alertname=Watchdog")
        except HakitError:
            return False
        return bool(targets) and all(t["health"] == "up" for t in targets) and bool(watchdog)

    def etcd_snapshot(self) -> Path:
        """`etcdctl snapshot save` through the first healthy member, into backups/."""
        from hakit.etcd import snapshot_name  # not at the top: the lab's ctl must start fast
        cp = self.spec.control_plane_hosts[0]
        pki = self.paths.host_pki(cp.name) / "etcd"
        self.paths.backups.mkdir(parents=True, exist_ok=True)
        dest = self.paths.backups / snapshot_name()
        net.sh(binaries.path("etcdctl"), f"--endpoints=https://{cp.address}:2379", f"--cacert={pki / 'ca.crt'}",
               f"--cert={pki / 'healthcheck-client.crt'}", f"--key={pki / 'healthcheck-client.key'}",
               "snapshot", "save", str(dest))
        return dest

    def status(self) -> list[ComponentStatus]:
        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(self._component_status, self.components))

    def env(self) -> dict[str, str]:
        path = ":".join(str(d) for d in binaries.bin_dirs())
        return {"KUBECONFIG": str(self.paths.admin_kubeconfig), "HAKIT_INVENTORY": str(self.paths.inventory),
                "PATH": f"{path}:$PATH"}

    def down(self, progress: Progress = print) -> None:
        down(self.paths, self.spec, progress)


def down(paths: LabPaths | None = None, spec: LabSpec | None = None, progress: Progress = print) -> None:
    """Remove every process, namespace, link and file of the lab. Idempotent.

    `up` records the spec before it creates anything, so after a crash the state
    file still names the namespace prefix and leftovers are found by it. Without a
    state file only an explicitly given spec is cleaned: never guess a prefix, or
    one lab's `down` would take down another."""
    paths = paths or LabPaths(lab_dir())
    state = procs.State(paths)
    doc = state.load()
    if "spec" in doc:
        spec = LabSpec(**doc["spec"])
    if spec is None:
        if paths.root.exists():
            subprocess.run(["rm", "-rf", "--one-file-system", str(paths.root)], check=False)
        progress(f"no lab recorded at {paths.root}; nothing to remove")
        return
    pids = state.pids()
    for ns in net.existing_netns(spec.prefix):
        pids.update(net.netns_pids(ns))
    if pids:
        progress(f"stopping {len(pids)} processes")
    for pid in pids:
        procs.signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while any(procs.alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        procs.stop(pid, timeout=2, sig=signal.SIGKILL)
    net.destroy(spec)
    if paths.root.exists():
        # A test may have mounted a filesystem inside (a data dir as its own disk) and died:
        # unmount what is below the root, deepest first, so nothing is left mounted or behind.
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        root = str(paths.root.resolve())
        for target in sorted((m for m in mounts if m.startswith(root + "/")), key=len, reverse=True):
            subprocess.run(["umount", "-l", target], check=False, capture_output=True)
        subprocess.run(["rm", "-rf", "--one-file-system", str(paths.root)], check=False)
    progress("lab removed")
