"""provision-monitoring: Prometheus and a clustered Alertmanager pair on hosts outside the
cluster, watching its HA components, with hakit's alert rules and a receiver.

Where self-managed clusters often keep it: on hosts of their own, so monitoring survives
the cluster. Prometheus (on the first of the inventory's monitoring.hosts) scrapes every
control plane's apiserver, etcd, controller-manager, scheduler and haproxy, and every
node's kube-proxy, under kube-prometheus-stack's job names; it reads the API with a
ServiceAccount token allowed GET /metrics and nothing else (kept 0600 on the host, never
printed). Alertmanager runs on every monitoring host, clustered, and routes to the
webhook receiver given. The etcd, controller-manager, scheduler and kube-proxy metrics
must be reachable from another host (kubeadm-init expose_metrics=yes, or the same
extraArgs on an existing cluster).

The node and Deployment alerts read kube-state-metrics (job "kube-state-metrics"): a
cluster without it never pages for a NotReady node (MON-008 says so). Given a binary
(kube_state_metrics=PATH, Debian has no package), it runs as a systemd service beside
Prometheus, reading the API with a ServiceAccount allowed to list and watch what it
reports; a cluster that runs its own is scraped by adding that job yourself.
"""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

import jinja2
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from hakit import wait
from hakit.errors import ConfigError, HakitError
from hakit.prometheus import RULES_FILE, Alertmanager, Prometheus
from hakit.runbook import Context, Param, Runbook, Step
from hakit.validate import ip, is_url

PROGRAMS = {"prometheus": "prometheus", "alertmanager": "prometheus-alertmanager"}
TOKEN, CA = "/etc/prometheus/k8s-token", "/etc/prometheus/k8s-ca.crt"
SA, NAMESPACE = "hakit-prometheus", "kube-system"
KSM, KSM_SA, KSM_PORT = "/usr/local/bin/kube-state-metrics", "hakit-kube-state-metrics", 8080
KSM_KUBECONFIG = "/etc/kube-state-metrics/kubeconfig"
KSM_RESOURCES = {"": ["nodes", "pods"], "apps": ["deployments", "replicasets", "statefulsets", "daemonsets"],
                 "policy": ["poddisruptionbudgets"]}
TEMPLATES = jinja2.Environment(loader=jinja2.PackageLoader("hakit", "templates/monitoring"),
                               undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
VALIDATE = "promtool check config --syntax-only /etc/prometheus/prometheus.yml >/dev/null"


def hosts(ctx: Context) -> list[str]:
    names = [h.name for h in ctx.inventory.monitoring_hosts]
    if not names:
        raise ConfigError("monitoring.hosts: none in the inventory; name the hosts Prometheus and Alertmanager "
                          "run on")
    return names


def address(ctx: Context, host: str) -> str:
    return next(h.address for h in ctx.inventory.monitoring_hosts if h.name == host)


def webhook(ctx: Context) -> str:
    url = ctx.params["webhook"]
    if not is_url(url):
        raise ConfigError(f"webhook={url[:60]!r}: expected an http(s) URL")
    return url


def look(ctx: Context) -> str:
    missing = {h: [pkg for pkg in PROGRAMS.values() if ctx.control.run(h, "dpkg -s %s >/dev/null 2>&1", pkg).rc]
               for h in hosts(ctx)}
    ctx.state["missing"] = missing
    prom = hosts(ctx)[0]
    return (f"Prometheus on {prom}, Alertmanager on {', '.join(hosts(ctx))}; to install: "
            + ("; ".join(f"{h}: {', '.join(m)}" for h, m in missing.items() if m) or "nothing"))


def install(ctx: Context) -> str:
    done = []
    for host, missing in ctx.state["missing"].items():
        if missing:
            ctx.control.must(host, "installing", "DEBIAN_FRONTEND=noninteractive apt-get install -y "
                             + " ".join(["%s"] * len(missing)), *missing)
            done.append(f"{host}: {', '.join(missing)}")
    return "; ".join(done) or "installed everywhere already"


def service_account(ctx: Context, name: str, rules: list[dict]) -> bytes:
    """A ServiceAccount bound to a ClusterRole of exactly `rules`, and its long-lived token
    (never printed). Objects left by an earlier run are reused."""
    core, rbac = client.CoreV1Api(ctx.control.api), client.RbacAuthorizationV1Api(ctx.control.api)
    objects = [
        (core.create_namespaced_service_account, (NAMESPACE, {"metadata": {"name": name}})),
        (rbac.create_cluster_role, ({"metadata": {"name": name}, "rules": rules},)),
        (rbac.create_cluster_role_binding, ({"metadata": {"name": name},
                                             "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                                         "kind": "ClusterRole", "name": name},
                                             "subjects": [{"kind": "ServiceAccount", "name": name,
                                                           "namespace": NAMESPACE}]},)),
        (core.create_namespaced_secret, (NAMESPACE, {"metadata": {"name": name, "annotations": {
            "kubernetes.io/service-account.name": name}}, "type": "kubernetes.io/service-account-token"})),
    ]
    for create, args in objects:
        try:
            create(*args, _request_timeout=10)
        except ApiException as e:
            if e.status != 409:   # already there from an earlier run
                raise HakitError(f"creating ServiceAccount {NAMESPACE}/{name}'s objects: HTTP {e.status}") from None
    token = wait.until(lambda: (core.read_namespaced_secret(name, NAMESPACE, _request_timeout=10).data or {})
                       .get("token"), 30, "the token controller to fill the token", interval=1.0)
    return base64.b64decode(token)


def cluster_ca(ctx: Context) -> bytes:
    with open(ctx.control.api.configuration.ssl_ca_cert, "rb") as f:
        return f.read()


def credentials(ctx: Context) -> str:
    """A ServiceAccount allowed GET /metrics only, its long-lived token and the cluster CA,
    streamed to the Prometheus host (0600, owned by the prometheus user)."""
    token = service_account(ctx, SA, [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}])
    prom = hosts(ctx)[0]
    ctx.control.upload(prom, token, TOKEN)
    ctx.control.upload(prom, cluster_ca(ctx), CA, mode=0o644)
    ctx.control.must(prom, "giving the token to the prometheus user", "chown prometheus %s", TOKEN)
    return f"ServiceAccount {NAMESPACE}/{SA} (GET /metrics only); its token in {prom}:{TOKEN} (0600)"


def kube_state_metrics(ctx: Context) -> str:
    """The binary, a kubeconfig with a list/watch-only token (0600, the prometheus user's),
    and a systemd unit on the Prometheus host, listening on its loopback only."""
    binary = ctx.params["kube_state_metrics"]
    if not binary:
        return ("none given: scrape the cluster's own kube-state-metrics as job \"kube-state-metrics\", "
                "or the node and Deployment alerts can never fire (MON-008)")
    if not os.path.isfile(binary) or not os.access(binary, os.X_OK):
        raise ConfigError(f"kube_state_metrics={binary[:80]!r}: not an executable file on this machine")
    prom = hosts(ctx)[0]
    token = service_account(ctx, KSM_SA, [{"apiGroups": [group], "resources": resources, "verbs": ["list", "watch"]}
                                          for group, resources in KSM_RESOURCES.items()])
    kubeconfig = yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "ksm",
        "clusters": [{"name": "cluster", "cluster": {"server": ctx.inventory.vip_url,
                                                     "certificate-authority-data": base64.b64encode(
                                                         cluster_ca(ctx)).decode()}}],
        "users": [{"name": KSM_SA, "user": {"token": token.decode()}}],
        "contexts": [{"name": "ksm", "context": {"cluster": "cluster", "user": KSM_SA}}]})
    ctx.control.upload(prom, kubeconfig.encode(), KSM_KUBECONFIG)
    ctx.control.must(prom, "giving the kubeconfig to the prometheus user", "chown prometheus %s", KSM_KUBECONFIG)
    ctx.control.upload(prom, Path(binary), KSM, mode=0o755)
    resources = ",".join(r for rs in KSM_RESOURCES.values() for r in rs)
    ctx.control.write(prom, "/etc/systemd/system/kube-state-metrics.service", TEMPLATES.get_template(
        "kube-state-metrics.service.j2").render(binary=KSM, kubeconfig=KSM_KUBECONFIG, port=KSM_PORT,
                                                resources=resources))
    return (f"{prom}: {KSM} as kube-state-metrics.service on 127.0.0.1:{KSM_PORT} ({resources}); "
            f"ServiceAccount {NAMESPACE}/{KSM_SA} (list, watch), its token in {KSM_KUBECONFIG} (0600)")


def targets(ctx: Context) -> dict[str, list[str]]:
    cps = [h.address for h in ctx.inventory.control_plane]
    nodes = client.CoreV1Api(ctx.control.api).list_node(_request_timeout=10).items
    node_ips = [ip(a.address, f"node {n.metadata.name}: InternalIP")
                for n in nodes for a in n.status.addresses or [] if a.type == "InternalIP"]
    stats = ctx.inventory.haproxy_stats
    if not stats:
        raise ConfigError("api.haproxy_stats: needed to scrape haproxy (provision-api-lb serves it there)")
    port = stats.split("{address}:", 1)[1].split("/", 1)[0]
    return {"control_planes": [f"{a}:{ctx.inventory.apiserver_port}" for a in cps],
            "etcd": [f"{a}:2381" for a in cps], "kube_proxy": [f"{a}:10249" for a in node_ips],
            "haproxy": [f"{a}:{port}" for a in cps],
            "kube-controller-manager": [f"{a}:10257" for a in cps], "kube-scheduler": [f"{a}:10259" for a in cps],
            "kube-state-metrics": [f"127.0.0.1:{KSM_PORT}"] if ctx.params["kube_state_metrics"] else []}


def configure(ctx: Context) -> str:
    t = targets(ctx)
    prom, ams = hosts(ctx)[0], hosts(ctx)
    ctx.control.write(prom, "/etc/prometheus/prometheus.yml", TEMPLATES.get_template("prometheus.yml.j2").render(
        interval=ctx.params["interval"], cluster=ctx.inventory.name, token=TOKEN, ca=CA,
        alertmanagers=[f"{address(ctx, h)}:9093" for h in ams], control_planes=t["control_planes"],
        etcd=t["etcd"], kube_proxy=t["kube_proxy"], haproxy=t["haproxy"], kube_state_metrics=t["kube-state-metrics"],
        token_jobs=[(job, t[job]) for job in ("kube-controller-manager", "kube-scheduler")]))
    ctx.control.write(prom, "/etc/prometheus/rules/hakit-ha-alerts.yaml", RULES_FILE.read_text())
    ctx.control.must(prom, "checking prometheus.yml and the rules", VALIDATE + " && promtool check rules %s >/dev/null",
                     "/etc/prometheus/rules/hakit-ha-alerts.yaml")
    for host in ams:
        peers = " ".join(f"--cluster.peer={address(ctx, h)}:9094" for h in ams if h != host)
        ctx.control.write(host, "/etc/prometheus/alertmanager.yml",
                          TEMPLATES.get_template("alertmanager.yml.j2").render(receiver=webhook(ctx)))
        ctx.control.write(host, "/etc/default/prometheus-alertmanager",
                          f'ARGS="--cluster.advertise-address={address(ctx, host)}:9094 {peers}"\n')
        ctx.control.must(host, "checking alertmanager.yml", "amtool check-config /etc/prometheus/alertmanager.yml")
    return (f"{prom}: prometheus.yml ({sum(len(v) for v in t.values())} targets) and hakit's rules; "
            f"alertmanager.yml and cluster peers on {', '.join(ams)}")


def restart(ctx: Context) -> str:
    prom = hosts(ctx)[0]
    if ctx.params["kube_state_metrics"]:
        ctx.control.must(prom, "starting kube-state-metrics", "systemctl daemon-reload && systemctl enable -q "
                         "kube-state-metrics && systemctl restart kube-state-metrics")
    ctx.control.must(prom, "starting prometheus", "systemctl enable -q prometheus && systemctl restart prometheus")
    for host in hosts(ctx):
        ctx.control.must(host, "starting alertmanager", "systemctl enable -q prometheus-alertmanager && "
                         "systemctl restart prometheus-alertmanager")
    return (f"prometheus{' and kube-state-metrics' if ctx.params['kube_state_metrics'] else ''} on {prom}, "
            f"prometheus-alertmanager on {', '.join(hosts(ctx))} (re)started")


def watching(ctx: Context) -> str:
    """Every target up and the Watchdog at Alertmanager: the whole path works."""
    prom = Prometheus(f"http://{address(ctx, hosts(ctx)[0])}:9090")
    am = Alertmanager(f"http://{address(ctx, hosts(ctx)[0])}:9093")

    def down() -> list[str]:
        try:
            out = [f"{t['labels'].get('job')} {t['labels'].get('instance')}: {t.get('lastError') or t['health']}"
                   for t in prom.targets() if t["health"] != "up"]
            return out + ([] if am.alerts(filter="alertname=Watchdog") else ["no Watchdog at Alertmanager yet"])
        except HakitError as e:
            return [str(e)]
    started = time.monotonic()
    wait.until(lambda: not down(), 120, "every target up and the Watchdog at Alertmanager", interval=2.0,
               why=lambda: "; ".join(down()[:5]))
    return f"{len(prom.targets())} targets up, Watchdog delivered ({time.monotonic() - started:.0f} s)"


RUNBOOK = Runbook(
    name="provision-monitoring",
    title="Install Prometheus and a clustered Alertmanager pair watching the HA components",
    summary="Prometheus with kube-prometheus-stack's job names and hakit's HA rules, a ServiceAccount allowed "
            "GET /metrics, Alertmanager on every monitoring host routing to a webhook receiver.",
    params=[Param("webhook", "the receiver Alertmanager posts to (http(s) URL)"),
            Param("interval", "scrape and rule evaluation interval", "15s"),
            Param("kube_state_metrics", "path on this machine of a kube-state-metrics binary to run beside "
                  "Prometheus (empty: the cluster runs its own, scraped as job kube-state-metrics)", "")],
    steps=[
        Step("look", "See what each monitoring host has installed",
             lambda ctx: f"on {', '.join(hosts(ctx))}: dpkg -s prometheus prometheus-alertmanager", look,
             changes=False),
        Step("install", "Install Prometheus and Alertmanager where missing",
             lambda ctx: "apt-get install -y prometheus prometheus-alertmanager (only what is missing)", install),
        Step("credentials", "A ServiceAccount allowed GET /metrics; its token to the Prometheus host",
             lambda ctx: f"create {NAMESPACE}/{SA} (ServiceAccount, ClusterRole, binding, token Secret); copy the "
                         f"token to {TOKEN} (0600) and the cluster CA to {CA}",
             credentials),
        Step("kube-state-metrics", "kube-state-metrics beside Prometheus, for the node and Deployment alerts",
             lambda ctx: (f"copy {ctx.params['kube_state_metrics']} to {KSM}; create {NAMESPACE}/{KSM_SA} "
                          f"(list, watch {', '.join(r for rs in KSM_RESOURCES.values() for r in rs)}); its "
                          f"kubeconfig to {KSM_KUBECONFIG} (0600); kube-state-metrics.service on 127.0.0.1:{KSM_PORT}")
             if ctx.params["kube_state_metrics"] else "nothing: no kube_state_metrics binary given",
             kube_state_metrics),
        Step("configure", "Write prometheus.yml, hakit's rules and alertmanager.yml, and check them",
             lambda ctx: "render prometheus.yml (jobs apiserver, kube-etcd, kube-controller-manager, kube-scheduler, "
                         "kube-proxy, haproxy, kube-state-metrics), rules/hakit-ha-alerts.yaml, "
                         "alertmanager.yml (webhook "
                         f"{ctx.params['webhook']}); promtool check config; amtool check-config",
             configure),
        Step("restart", "Restart Prometheus and every Alertmanager",
             lambda ctx: "systemctl enable + restart prometheus; prometheus-alertmanager on every host", restart),
        Step("watching", "Wait until every target is up and the Watchdog reaches Alertmanager",
             lambda ctx: "GET /api/v1/targets; GET /api/v2/alerts?filter=alertname=Watchdog; up to 120 s",
             watching, changes=False),
    ],
    checks=["MON-001", "MON-002", "MON-003", "MON-004", "MON-005", "MON-006", "MON-007", "MON-008"],
)
