"""The components on a host: stop, start, kill, rejoin, is-active, enable, each rendered from the
inventory's `disruptive.control` template (kubeadm's systemd units and static-pod
manifests by default, see components.py)."""

from __future__ import annotations

from hakit.cluster.access import Access
from hakit.cluster.components import render


class Services(Access):
    def _must_act(self, action: str, host: str, component: str, initial_cluster: str = "") -> None:
        self.must(host, f"{action} {component}",
                  render(self.inv.fault_control, action, host, component, initial_cluster))

    def stop(self, host: str, component: str) -> None:
        self._must_act("stop", host, component)

    def start(self, host: str, component: str) -> None:
        self._must_act("start", host, component)

    def restart(self, host: str, component: str) -> None:
        """Stop (escalating as the template does), then start: what a restart runbook does."""
        self.stop(host, component)
        self.start(host, component)

    def kill(self, host: str, component: str) -> None:
        self._must_act("kill", host, component)

    def rejoin(self, host: str, initial_cluster: str) -> None:
        """Start the host's etcd, its data dir empty, as a member just added to the cluster."""
        self._must_act("rejoin", host, "etcd", initial_cluster)

    def enable(self, host: str, component: str) -> None:
        """Started again when the host boots (a package may install a service disabled)."""
        self._must_act("enable", host, component)

    def is_active(self, host: str, component: str) -> bool:
        return self.run(host, render(self.inv.fault_control, "is-active", host, component)).rc == 0
