"""kubeadm-init: create the cluster on its first control-plane host, the kubeadm HA way.

The control-plane endpoint is the inventory's VIP and port (keepalived + haproxy, from
provision-api-lb with new_cluster=yes), so every kubeconfig kubeadm writes, and every
node that joins later, goes through the load balancer; `--upload-certs` stores the
control-plane certificates, encrypted, for control-plane-join. What the host says of
itself shapes the configuration: a cgroup v1 host gets `failCgroupV1: false` (and the
one preflight error that goes with it ignored), a host whose conntrack table size
cannot be written gets kube-proxy told not to try. Afterwards the admin kubeconfig and
an etcd client certificate are fetched to where the inventory will look for them.
"""

from __future__ import annotations

import time
from pathlib import Path

from hakit.cluster import kubeadm
from hakit.cluster.probes import accepts, wait_ready
from hakit.errors import ConfigError, HakitError
from hakit.runbook import Context, Param, Runbook, Step

ETCD_CLIENT = {"ca.crt": "/etc/kubernetes/pki/etcd/ca.crt",
               "healthcheck-client.crt": "/etc/kubernetes/pki/etcd/healthcheck-client.crt",
               "healthcheck-client.key": "/etc/kubernetes/pki/etcd/healthcheck-client.key"}


def first(ctx: Context) -> str:
    host = ctx.params["host"] or ctx.inventory.control_plane[0].name
    if host not in {h.name for h in ctx.inventory.control_plane}:
        raise ConfigError(f"host={host[:60]}: not a control-plane host of the inventory")
    return host


def address(ctx: Context) -> str:
    return next(h.address for h in ctx.inventory.control_plane if h.name == first(ctx))


def not_initialised(ctx: Context) -> None:
    host = first(ctx)
    if ctx.control.run(host, "test -e /etc/kubernetes/admin.conf").rc == 0:
        raise HakitError(f"{host} is already a control plane (/etc/kubernetes/admin.conf exists); "
                         "add hosts with control-plane-join, or `kubeadm reset` it first")


def balancer_listens(ctx: Context) -> None:
    inv = ctx.inventory
    got = accepts(inv.vip, inv.port)
    if got != "ok":
        raise HakitError(f"nothing accepts connections on the VIP {inv.vip}:{inv.port} ({got}); "
                         "run provision-api-lb new_cluster=yes first")


def ready_to_init(ctx: Context) -> None:
    not_initialised(ctx)
    balancer_listens(ctx)


def look(ctx: Context) -> str:
    host = first(ctx)
    cgroup_v1 = kubeadm.cgroup_v1(ctx.control, host)
    fixed = ctx.control.run(host, kubeadm.CONNTRACK_FIXED).rc == 0
    version = ctx.params["kubernetes_version"] or ctx.control.must(host, "asking kubeadm its version",
                                                                   "kubeadm version -o short").strip()
    if not kubeadm.VERSION.match(version):
        raise HakitError(f"kubernetes_version {version[:40]!r}: expected vMAJOR.MINOR.PATCH")
    ctx.state.update(cgroup_v1=cgroup_v1, conntrack_fixed=fixed, version=version)
    cgroup = "v1 (deprecated: failCgroupV1 false)" if cgroup_v1 else "v2"
    return (f"{host}: Kubernetes {version}; cgroup {cgroup}; conntrack table size "
            f"{'fixed by the host' if fixed else 'writable'}; the VIP {ctx.inventory.vip}:{ctx.inventory.port} "
            "accepts connections")


def configure(ctx: Context) -> str:
    inv = ctx.inventory
    text = kubeadm.init_config(
        ctx.state["version"], inv.name, (inv.vip, inv.port), address(ctx),
        [h.address for h in inv.control_plane], ctx.params["pod_subnet"], ctx.params["service_subnet"],
        ctx.state["cgroup_v1"], ctx.state["conntrack_fixed"], ctx.params["expose_metrics"] == "yes")
    ctx.control.write(first(ctx), kubeadm.CONFIG, text, 0o600)
    return f"wrote {kubeadm.CONFIG} on {first(ctx)}"


def init(ctx: Context) -> str:
    started = time.monotonic()
    # Its output holds a join token and the certificate key: kept out of the journal.
    kubeadm.run(ctx.control, first(ctx), "init --config %s --upload-certs", kubeadm.CONFIG)
    return (f"kubeadm init on {first(ctx)} took {time.monotonic() - started:.0f} s"
            + (" (preflight's SystemVerification ignored: cgroup v1)" if ctx.state["cgroup_v1"] else ""))


def apiserver_ready(ctx: Context) -> None:
    url = f"https://{address(ctx)}:{ctx.inventory.apiserver_port}"
    wait_ready(url, 120)


def fetch(ctx: Context) -> str:
    """The admin kubeconfig to the inventory's cluster.kubeconfig, and an etcd client
    certificate beside it (etcd-client/), each 0600."""
    host, kubeconfig = first(ctx), ctx.inventory.kubeconfig
    ctx.control.download(host, "/etc/kubernetes/admin.conf", kubeconfig)
    certs = Path(kubeconfig).parent / "etcd-client"
    for name, remote in ETCD_CLIENT.items():
        ctx.control.download(host, remote, certs / name)
    return (f"{kubeconfig} (admin) and {certs}/ (etcd healthcheck client), readable by this user only; "
            f"the inventory's etcd section takes them as ca: {certs}/ca.crt, cert: {certs}/healthcheck-client.crt, "
            f"key: {certs}/healthcheck-client.key")


def api_through_vip(ctx: Context) -> str:
    url = ctx.inventory.vip_url
    wait_ready(url, 120)
    return f"{url}/readyz answers"


RUNBOOK = Runbook(
    installs_cluster=True,
    name="kubeadm-init",
    title="Create the cluster on the first control-plane host, behind the VIP",
    summary="kubeadm init with the VIP as controlPlaneEndpoint and --upload-certs, then the admin kubeconfig "
            "and an etcd client certificate fetched for the inventory.",
    params=[Param("host", "the first control-plane host (default: the inventory's first)", ""),
            Param("kubernetes_version", "the version to install (default: the host's kubeadm's own)", ""),
            Param("pod_subnet", "the pods' CIDR (each node gets a /24 of it)", "10.244.0.0/16"),
            Param("service_subnet", "the Services' CIDR", "10.96.0.0/12"),
            Param("expose_metrics", "yes: etcd, controller-manager, scheduler and kube-proxy metrics reachable "
                  "from another host, as kube-prometheus-stack needs (kubeadm binds them to 127.0.0.1)", "no",
                  ("yes", "no"))],
    steps=[
        Step("look", "Check the host is not a control plane yet and the load balancer listens on the VIP",
             lambda ctx: f"on {first(ctx)}: test -e /etc/kubernetes/admin.conf; cgroup and conntrack; "
                         f"connect to {ctx.inventory.vip}:{ctx.inventory.port}",
             look, changes=False, require=ready_to_init),
        Step("configure", "Write kubeadm's configuration (the VIP as controlPlaneEndpoint, systemd cgroups)",
             lambda ctx: f"write {kubeadm.CONFIG} (0600) on {first(ctx)}", configure),
        Step("init", "Run kubeadm init with --upload-certs",
             lambda ctx: f"on {first(ctx)}: kubeadm init --config {kubeadm.CONFIG} --upload-certs",
             init, require=not_initialised, verify=apiserver_ready),
        Step("fetch", "Fetch the admin kubeconfig and an etcd client certificate for the inventory",
             lambda ctx: f"copy /etc/kubernetes/admin.conf to {ctx.inventory.kubeconfig}; "
                         f"{', '.join(ETCD_CLIENT.values())} beside it (0600)",
             fetch),
        Step("api", "Wait until the API answers through the VIP",
             lambda ctx: f"GET {ctx.inventory.vip_url}/readyz; up to 120 s", api_through_vip, changes=False),
    ],
    checks=["API-001"],
)
