"""What stopping, starting or killing a component means on a host, as one shell
command. The default is kubeadm's layout: keepalived, haproxy and kubelet are
systemd units (so are Prometheus and Alertmanager on the monitoring hosts, by Debian's
unit names); etcd and the control-plane components are static pods, stopped by
parking their manifest where the kubelet does not look and started by putting it
back. An inventory may give its own template (`disruptive.control`).

Every value placed in a command is validated here and shell-quoted; a template is
filled in one pass, so a value can never introduce another placeholder.
"""

from __future__ import annotations

import re
import shlex

from hakit.errors import ConfigError

CONTROL_PLANE_COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
                            "haproxy", "keepalived")
MONITORING_COMPONENTS = ("prometheus", "alertmanager")   # on the inventory's monitoring.hosts
# The systemd unit of each component that is one: Debian's names for Prometheus and Alertmanager,
# as provision-monitoring installs them.
SYSTEMD_UNITS = {"keepalived": "keepalived", "haproxy": "haproxy", "kubelet": "kubelet",
                 "prometheus": "prometheus", "alertmanager": "prometheus-alertmanager"}
COMPONENTS = (*CONTROL_PLANE_COMPONENTS, "kubelet", *MONITORING_COMPONENTS)
ACTIONS = ("stop", "start", "kill", "is-active", "rejoin", "enable")
MANIFESTS, PARKED = "/etc/kubernetes/manifests", "/etc/kubernetes/hakit-parked"
# etcd's --initial-cluster: name=URL pairs; no character sed or a shell would read.
INITIAL_CLUSTER = re.compile(r"[A-Za-z0-9._-]+=https?://[A-Za-z0-9.:\[\]-]+(,[A-Za-z0-9._-]+=https?://[A-Za-z0-9.:\[\]-]+)*")
PLACEHOLDER = re.compile(r"\{(action|host|component|initial_cluster)\}")


def _validate(action: str, component: str, initial_cluster: str) -> None:
    if action not in ACTIONS:
        raise ConfigError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
    if component not in COMPONENTS:
        raise ConfigError(f"unknown component {component!r}; expected one of {', '.join(COMPONENTS)}")
    if initial_cluster and not INITIAL_CLUSTER.fullmatch(initial_cluster):
        raise ConfigError(f"etcd initial cluster {initial_cluster[:80]!r}: expected name=URL pairs")


def kubeadm_command(action: str, component: str, initial_cluster: str = "") -> str:
    """The shell command that performs action on a component of a kubeadm host.

    `rejoin` starts a stopped etcd with an empty data dir as a member added to a running
    cluster: its manifest gets --initial-cluster-state=existing and the cluster's current
    --initial-cluster (kubeadm writes only the members known at join time), and an annotation
    with the time: a static pod's UID is the hash of its manifest, and the kubelet's crash-loop
    back-off (up to 5 min) is kept per UID, so a manifest that came back unchanged (a member
    crash-looping before, the same members in the same order) would wait out the old back-off."""
    _validate(action, component, initial_cluster)
    c = shlex.quote(component)
    if action == "rejoin":
        parked = shlex.quote(f"{PARKED}/{component}.yaml")
        edit = shlex.quote("/--initial-cluster-state=/d; s#^\\( *\\)- --initial-cluster=.*#\\1- "
                           f"--initial-cluster-state=existing\\n\\1- --initial-cluster={initial_cluster}#")
        stamp = '\\n    hakit.io/rejoined: \\"$(date +%s%N)\\"#'
        annotate = (f"if grep -q '^  annotations:$' {parked}; then sed -i -e '/^    hakit.io\\/rejoined:/d' "
                    f"-e \"s#^  annotations:\\$#&{stamp}\" {parked}; "
                    f"else sed -i -e \"s#^metadata:\\$#&\\n  annotations:{stamp}\" {parked}; fi")
        return f"if [ -f {parked} ]; then sed -i -e {edit} {parked} && {annotate} && mv {parked} {MANIFESTS}/; fi"
    if component in SYSTEMD_UNITS:
        c = shlex.quote(SYSTEMD_UNITS[component])
        return {"stop": f"systemctl stop {c}", "start": f"systemctl start {c}",
                "kill": f"systemctl kill --signal=SIGKILL {c}",
                "is-active": f"systemctl is-active --quiet {c}",
                "enable": f"systemctl enable --quiet {c}"}[action]   # started again when the host boots
    if action == "enable":   # a static pod starts whenever the kubelet does: its manifest is enough
        return "true"
    ids = f"crictl ps -q --state running --name {shlex.quote(f'^{component}$')}"
    running = f"{ids} | grep -q ."
    return {
        # The kubelet stops a static pod whose manifest leaves its directory; wait until it has.
        # One parked already (an earlier stop, an operator) is stopped all the same. A kubelet
        # that talks to its own apiserver (kubeadm's default since 1.33) while that apiserver's
        # etcd is gone blocks on it and has not even begun the stop minutes later (kubeadm lab,
        # quorum lost: 57-125 s for an apiserver); past the 30 s grace period the container is
        # stopped through the CRI, as the kubelet would have.
        "stop": f"mkdir -p {PARKED} && {{ [ ! -f {MANIFESTS}/{c}.yaml ] || mv {MANIFESTS}/{c}.yaml {PARKED}/; }} && "
                f"for i in $(seq 240); do {running} || exit 0; [ $i != 70 ] || crictl stop --timeout 5 "
                f"$({ids}) >/dev/null 2>&1; sleep 0.5; done; exit 1",
        # ... and starts it again after it is back: wait for that too. Usually seconds; but a
        # control plane's kubelet talks to its own apiserver, which reads only its own etcd:
        # when that etcd was the one parked, the kubelet first retries deleting the old mirror
        # pod until it gives up (seen on the kubeadm lab: about 2.5 min). Up to 5 min.
        "start": f"if [ -f {PARKED}/{c}.yaml ]; then mv {PARKED}/{c}.yaml {MANIFESTS}/; fi && "
                 f"for i in $(seq 600); do {running} && exit 0; sleep 0.5; done; exit 1",
        # By its command line: a process name is cut to 15 characters, so `pkill -x
        # kube-controller-manager` never matches. The kubelet restarts the container.
        "kill": f"pkill --signal KILL -f {shlex.quote(f'^([^ ]*/)?{component}( |$)')}",
        "is-active": running,
    }[action]


def render(template: str | None, action: str, host: str, component: str, initial_cluster: str = "") -> str:
    """The command for action on host's component: kubeadm's, or the inventory's template
    with each placeholder replaced by its quoted value, in one pass."""
    if template is None:
        return kubeadm_command(action, component, initial_cluster)
    _validate(action, component, initial_cluster)
    values = {"action": action, "host": host, "component": component, "initial_cluster": initial_cluster}
    return PLACEHOLDER.sub(lambda m: shlex.quote(values[m.group(1)]), template)


def restart_command(template: str | None, host: str, component: str) -> str:
    """What a restart runs on the host (stop, then start), as `show` and --dry-run print it."""
    return "; ".join(render(template, action, host, component) for action in ("stop", "start"))
