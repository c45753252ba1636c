"""The kubeadm lab: the cluster shape users run, installed the way they install it.

`hakit lab up --kubeadm` makes bare Debian hosts (hakit.lab.nodes: LXC system containers
with systemd and sshd) and a hand-written-style inventory for them, then runs hakit's
own provisioning runbooks over SSH, as an operator would on any hosts:

    host-prepare bundle=...      swap, kernel, time, containerd, kubeadm/kubelet, images
    provision-api-lb new_cluster=yes   keepalived + haproxy, VIP :8443
    kubeadm-init                 cp1, the VIP as controlPlaneEndpoint, --upload-certs
    control-plane-join host=cp2, host=cp3
    worker-join host=w1, host=w2
    pod-network                  CNI bridge + routes; kube-proxy and CoreDNS ready
    provision-monitoring         Prometheus (kube-prometheus-stack's job names) and
                                 kube-state-metrics on mon1, Alertmanager on mon1 and
                                 mon2, paging a webhook receiver

and finally writes the inventory the checks use with `hakit inventory discover` plus the
access a user adds by hand. Nothing in it is lab-specific: kubeadm's paths, systemd and
static pods are acted on through the default kubeadm host control.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from hakit import discover, inventory
from hakit.cluster import Cluster
from hakit.errors import LabError
from hakit.lab import binaries, bundle, nodes
from hakit.paths import kubeadm_lab_dir

Progress = Callable[[str], None]
LB_PORT = 8443
ROUTER_ID = "78"
HAPROXY_STATS = "http://{address}:8404/stats;csv"   # provision-api-lb serves it where the inventory asks
PAGER_PORT = 9095   # the test receiver (hakit.lab.pager), on this machine at the bridge's address


class KubeadmLab:
    def __init__(self, spec: nodes.Spec, paths: nodes.Paths) -> None:
        self.spec, self.paths = spec, paths

    @classmethod
    def load(cls, root: Path | None = None) -> KubeadmLab:
        paths = nodes.Paths(root or kubeadm_lab_dir())
        if not paths.spec_file.exists():
            raise LabError(f"no kubeadm lab at {paths.root} (run `hakit lab up --kubeadm`)")
        return cls(nodes.Spec(**json.loads(paths.spec_file.read_text())), paths)

    @property
    def kubeconfig(self) -> Path:
        return self.paths.root / "admin.conf"

    @property
    def provisioning_inventory(self) -> Path:
        return self.paths.root / "provision.yaml"

    @property
    def inventory(self) -> Path:
        return self.paths.root / "inventory.yaml"

    @property
    def bundle(self) -> Path:
        return binaries.cache_dir().parent / "kubeadm-bundle"

    def _access(self) -> dict[str, object]:
        config = self.paths.root / "ssh" / "config"
        config.write_text(f"Host *\n  User root\n  IdentityFile {self.paths.ssh_key}\n  IdentitiesOnly yes\n"
                          f"  UserKnownHostsFile {self.paths.known_hosts}\n  StrictHostKeyChecking yes\n")
        return {"ssh": {"user": "root", "key": str(self.paths.ssh_key), "config": str(config)}}

    def _hosts(self, role: str) -> list[dict[str, str]]:
        return [{"name": n.name, "address": n.address} for n in self.spec.nodes if n.role == role]

    def _monitoring(self) -> dict[str, object]:
        """Where provision-monitoring puts Prometheus and Alertmanager, and the receiver."""
        first = next(n for n in self.spec.nodes if n.role == nodes.MONITORING)
        return {"hosts": self._hosts(nodes.MONITORING), "prometheus": f"http://{first.address}:9090",
                "alertmanager": f"http://{first.address}:9093",
                "receiver": f"http://{self.spec.gateway}:{PAGER_PORT}/notifications",
                "alertmanager_peers": self.spec.monitors}

    @property
    def pager_pid(self) -> Path:
        return self.paths.root / "pager.pid"

    def pager(self) -> int | None:
        """The pid of this lab's pager while it runs (by now the pid file may name another process)."""
        try:
            pid = int(self.pager_pid.read_text())
            return pid if str(self.paths.root / "pager.jsonl").encode() in Path(f"/proc/{pid}/cmdline").read_bytes() \
                else None
        except (OSError, ValueError):
            return None

    def start_pager(self) -> None:
        """The test receiver Alertmanager pages (a user's is PagerDuty or a chat room)."""
        with (self.paths.root / "pager.log").open("ab") as log:   # the child keeps its own copy
            proc = subprocess.Popen([sys.executable, "-m", "hakit.lab.pager", f"{self.spec.gateway}:{PAGER_PORT}",
                                     str(self.paths.root / "pager.jsonl")], stdout=log, stderr=log,
                                    start_new_session=True)
        self.pager_pid.write_text(str(proc.pid))

    @property
    def etcd_client(self) -> dict[str, str]:
        """Where kubeadm-init's fetch step puts an etcd client certificate (beside the kubeconfig)."""
        certs = self.kubeconfig.parent / "etcd-client"
        return {"ca": str(certs / "ca.crt"), "cert": str(certs / "healthcheck-client.crt"),
                "key": str(certs / "healthcheck-client.key")}

    def write_provisioning_inventory(self) -> None:
        """What an operator writes before a cluster exists (hosts, VIP, how to reach them),
        and adds to once kubeadm-init has fetched an etcd client certificate."""
        etcd = self.etcd_client if all(Path(p).exists() for p in self.etcd_client.values()) else None
        doc = {"version": inventory.SCHEMA_VERSION,
               "cluster": {"name": "hakit-kubeadm-lab", "kubeconfig": str(self.kubeconfig)},
               "api": {"vip": self.spec.vip, "port": LB_PORT, "apiserver_port": 6443, "haproxy_stats": HAPROXY_STATS},
               "control_plane": {"hosts": self._hosts(nodes.CONTROL_PLANE)},
               "workers": {"hosts": self._hosts(nodes.WORKER)},
               "monitoring": self._monitoring(),
               "access": self._access(),
               **({"etcd": etcd} if etcd else {}),
               "workloads": {"critical": [{"namespace": "kube-system", "name": "coredns"}]}}
        self.provisioning_inventory.write_text("# The kubeadm lab's hosts, before a cluster exists.\n"
                                               + yaml.safe_dump(doc, sort_keys=False))

    def write_inventory(self) -> None:
        """`hakit inventory discover`, then what a user fills in by hand (access, workers,
        the etcd client certificate kubeadm-init fetched, workloads, disruptive opt-in)."""
        doc = discover.discover(self.kubeconfig)
        doc["etcd"].update({**self.etcd_client, "backup_dir": str(self.paths.root / "backups")})
        doc["api"]["haproxy_stats"] = HAPROXY_STATS
        doc["workers"] = {"hosts": self._hosts(nodes.WORKER)}
        doc["monitoring"] = self._monitoring()
        doc["access"] = self._access()
        doc["workloads"] = {"critical": [{"namespace": "kube-system", "name": "coredns"}]}
        doc["disruptive"] = {"allowed": list(inventory.DISRUPTIVE_CHECKS),
                             "journal": str(self.paths.root / "faults.jsonl")}
        discover.write(doc, self.inventory)

    def up(self, progress: Progress = print) -> None:
        self.paths.root.mkdir(parents=True, exist_ok=True)
        self.paths.spec_file.write_text(json.dumps(self.spec.to_dict()))   # first: `down` can always clean up
        image = binaries.build_kubeadm_lab()
        progress(f"host image {image.name}; building the offline bundle (cached: {self.bundle})")
        bundle.build(self.bundle, image)
        nodes.boot_all(self.spec, self.paths, image, progress)
        self.write_provisioning_inventory()
        steps = [("host-prepare", {"bundle": str(self.bundle)}),
                 ("provision-api-lb", {"new_cluster": "yes", "router_id": ROUTER_ID}),
                 ("kubeadm-init", {"expose_metrics": "yes"})]
        steps += [("control-plane-join", {"host": n.name}) for n in self.spec.nodes
                  if n.role == nodes.CONTROL_PLANE][1:]
        steps += [("worker-join", {"host": n.name}) for n in self.spec.nodes if n.role == nodes.WORKER]
        steps += [("pod-network", {})]
        for name, params in steps:
            self._run(name, params, self.provisioning_inventory, progress)
            if name == "kubeadm-init":   # as its output says: the etcd client certificate goes in
                self.write_provisioning_inventory()
        self.write_inventory()
        progress(f"inventory written to {self.inventory} (by `inventory discover`, plus access)")
        # Day two, as the audit asks of any new kubeadm cluster: a first backup, and CoreDNS
        # spread over nodes behind a PDB (kubeadm starts both replicas on the first node).
        self._run("etcd-backup", {}, self.inventory, progress)
        self._run("workload-spread", {"workload": "kube-system/coredns"}, self.inventory, progress)
        self.start_pager()
        self._run("provision-monitoring", {"webhook": f"http://{self.spec.gateway}:{PAGER_PORT}/", "interval": "5s",
                                           "kube_state_metrics": binaries.path("kube-state-metrics")},
                  self.inventory, progress)

    def _run(self, name: str, params: dict[str, str], inventory_path: Path, progress: Progress) -> None:
        from hakit.runbook import get, run  # not at the top: hakit.runbook loads the runbooks
        started = time.monotonic()
        rb = get(name)
        run.start(rb, inventory.load(inventory_path, cluster_exists=not rb.installs_cluster), rb.resolve(params),
                  yes=True, confirm=lambda _: True,
                  out=lambda _: None)
        progress(f"runbook {name} {' '.join(f'{k}={v}' for k, v in params.items())}: done in "
                 f"{time.monotonic() - started:.0f}s")

    def status(self) -> tuple[list[tuple[str, str, str, str]], dict[str, str]]:
        """(host, component, health, detail) for each container, then for what the steady state
        reads on the cluster (hakit.cluster.steady: static pods, etcd, the VIP, nodes); and what
        is not steady, why (empty: the lab is up)."""
        rows = [(n.name, "container", nodes.state(self.paths, n.name), "") for n in self.spec.nodes]
        stopped = {f"{host}/container": state for host, _, state, _ in rows if state != "RUNNING"}
        if stopped:
            return rows, stopped
        if not self.inventory.exists():
            return rows, {"inventory": f"{self.inventory} is missing: `up` did not finish"}
        control = Cluster(inventory.load(self.inventory))
        health = control.health()
        rows += [(h.host, h.component, "ok" if h.ok else "DOWN", h.detail) for h in health]
        return rows, control.unsteady(health)

    def resume(self, progress: Progress = print, timeout: float = 300) -> None:
        """Start the kept containers of a lab that stopped (`lxc-stop`, this machine's restart)
        and the pager, and wait until the steady state is back: what was installed stays."""
        image = binaries.build_kubeadm_lab()   # cached: the image the nodes' overlays sit on
        nodes.boot_all(self.spec, self.paths, image, progress)
        if self.pager() is None:
            self.start_pager()
        control = Cluster(inventory.load(self.inventory))
        waited = control.wait_steady(timeout, "the kubeadm lab healthy again", interval=2.0)
        progress("the steady state is back" + (f" (waited for: {waited})" if waited else ""))

    def down(self, progress: Progress = print) -> None:
        if (pid := self.pager()) is not None:
            try:
                os.killpg(pid, signal.SIGTERM)
            except OSError:
                pass
        nodes.destroy(self.spec, self.paths)
        progress("kubeadm lab removed")
