"""provision-api-lb: install and configure keepalived and haproxy on the control-plane
hosts, as the kubeadm HA guide (ha-considerations.md) lays them out.

Every control-plane host runs both: haproxy balances TCP on the inventory's API port
to every kube-apiserver, health-checked on /readyz; keepalived holds the VIP on one
host, highest priority first, and its track script gives it up when the host's
haproxy stops answering. The configs are rendered from hakit's templates (the same
the lab runs), checked with `haproxy -c` and `keepalived -t` before use, and the
previous files are kept beside them. Run it on fresh hosts, or to put hand-edited,
drifted configs back to one known shape. The VRRP password already in use is kept.
"""

from __future__ import annotations

import re
import secrets

from hakit import hosts, wait
from hakit.apilb import LoadBalancer, backend_states
from hakit.cluster import ssh
from hakit.cluster.components import render
from hakit.cluster.probes import accepts, readyz
from hakit.errors import HakitError
from hakit.http import session
from hakit.inventory import Host
from hakit.runbook import Context, Param, Runbook, Step

SERVICES = ("haproxy", "keepalived")
INSTALL = ("if command -v apt-get >/dev/null; then "
           "DEBIAN_FRONTEND=noninteractive apt-get install -y keepalived haproxy; "
           "elif command -v dnf >/dev/null; then dnf install -y keepalived haproxy; "
           "else echo 'neither apt-get nor dnf: install keepalived and haproxy by hand' >&2; exit 1; fi")
INSTALLED = "command -v keepalived >/dev/null && command -v haproxy >/dev/null"


def files(ctx: Context, host: str) -> dict[str, str]:
    return {what: ctx.inventory.host_path(what, host)
            for what in ("keepalived_check", "keepalived_conf", "haproxy_cfg")}


def load_balancer(ctx: Context, auth_pass: str = "") -> LoadBalancer:
    inv = ctx.inventory
    stats = re.search(r":(\d+)/", inv.haproxy_stats or "")
    return LoadBalancer(vip=inv.vip, prefix=int(ctx.state.get("prefix", 24)), port=inv.port,
                        apiserver_port=inv.apiserver_port, hosts=inv.control_plane,
                        router_id=int(ctx.params["router_id"]), auth_pass=auth_pass,
                        stats_port=int(stats.group(1)) if stats else None)


def look(ctx: Context) -> str:
    """What each host has, the interface that will carry the VIP, and its netmask."""
    missing, interfaces, lines = [], {}, []
    for h in ctx.inventory.control_plane:
        installed = ctx.control.run(h.name, INSTALLED).rc == 0
        missing += [] if installed else [h.name]
        interfaces[h.name] = ctx.control.interface(h.name)
        running = [s for s in SERVICES if installed and ctx.control.is_active(h.name, s)]
        lines.append(f"{h.name}: {'installed' if installed else 'not installed'}, running: "
                     f"{', '.join(running) or 'nothing'}, VIP interface {interfaces[h.name]}")
    first = ctx.inventory.control_plane[0]
    addr = ctx.control.run(first.name, "ip -o -4 addr show dev %s", interfaces[first.name]).stdout
    prefix = re.search(rf"inet {re.escape(first.address)}/(\d+)", addr)
    ctx.state.update(missing=missing, interfaces=interfaces, prefix=int(prefix.group(1)) if prefix else 24,
                     holders=ctx.control.vip_holders())
    return "\n".join(lines + [f"VIP {ctx.inventory.vip}/{ctx.state['prefix']}, held by "
                              f"{', '.join(ctx.state['holders']) or 'nobody'}"])


def install(ctx: Context) -> str:
    for host in ctx.state["missing"]:
        ctx.control.must(host, "installing keepalived and haproxy", INSTALL)
    missing = ctx.state["missing"]
    return f"installed on {', '.join(missing)}" if missing else "installed everywhere already"


def installed(ctx: Context) -> None:
    lacking = [h.name for h in ctx.inventory.control_plane if ctx.control.run(h.name, INSTALLED).rc != 0]
    if lacking:
        raise HakitError(f"keepalived or haproxy still missing on {', '.join(lacking)}")


def vrrp_password(ctx: Context) -> tuple[str, str]:
    """The password the hosts use now (so a host not yet redone still speaks to the rest),
    else a new one. Never journaled or printed: it authenticates VRRP adverts."""
    for h in ctx.inventory.control_plane:
        conf = ctx.control.run(h.name, "cat -- %s", ctx.inventory.host_path("keepalived_conf", h.name))
        found = [v.auth_pass for v in hosts.parse_keepalived(conf.stdout) if ctx.inventory.vip in v.vips]
        if conf.rc == 0 and found and found[0]:
            return found[0], f"kept the VRRP password from {h.name}"
    return secrets.token_hex(4), "a new VRRP password"   # PASS auth takes 8 characters


def configure(ctx: Context) -> str:
    password, origin = vrrp_password(ctx)
    lb = load_balancer(ctx, password)
    for h in ctx.inventory.control_plane:
        paths = files(ctx, h.name)
        for path in paths.values():   # kept for the undo, and for whoever asks what changed
            ctx.control.must(h.name, f"keeping {path}", 'f=%s; if [ -e "$f" ]; then cp -p -- "$f" "$f.hakit-prev"; fi',
                             path)
        ctx.control.write(h.name, paths["keepalived_check"], lb.check_script(), 0o755)
        ctx.control.write(h.name, paths["keepalived_conf"],
                          lb.keepalived_conf(h, ctx.state["interfaces"][h.name], paths["keepalived_check"]))
        ctx.control.write(h.name, paths["haproxy_cfg"],
                          lb.haproxy_cfg(h, stats_socket=ctx.inventory.host_path("haproxy_socket", h.name)))
        ctx.control.must(h.name, "checking the new configs", VALIDATE, paths["haproxy_cfg"], paths["keepalived_conf"])
    return f"wrote and checked {', '.join(files(ctx, '{host}').values())} on every host ({origin})"


VALIDATE = "haproxy -c -q -f %s && keepalived --config-test -f %s"


def restore_previous(ctx: Context) -> str:
    for h in ctx.inventory.control_plane:
        for path in files(ctx, h.name).values():
            ctx.control.run(h.name, 'f=%s; if [ -e "$f.hakit-prev" ]; then mv -- "$f.hakit-prev" "$f"; fi', path)
    return "previous configs put back"


def restart(ctx: Context) -> str:
    """haproxy, then keepalived, host by host; the VIP holder last, so it moves once at most."""
    order = sorted(ctx.inventory.control_plane, key=lambda h: h.name in ctx.state["holders"])
    for h in order:
        for service in SERVICES:
            ctx.control.enable(h.name, service)   # installed disabled (dnf's way, or an image's): no VIP after a reboot
            ctx.control.stop(h.name, service)
            ctx.control.start(h.name, service)
    return f"enabled and restarted {' and '.join(SERVICES)} on {', '.join(h.name for h in order)}"


def running(ctx: Context) -> None:
    down = [f"{h.name}/{s}" for h in ctx.inventory.control_plane for s in SERVICES
            if not ctx.control.is_active(h.name, s)]
    if down:
        raise HakitError(f"not running after the start: {', '.join(down)}")


def new_cluster(ctx: Context) -> bool:
    return ctx.params["new_cluster"] == "yes"


def vip_serves(ctx: Context) -> str:
    if new_cluster(ctx):   # no apiserver yet: haproxy accepting on the VIP is all there is to see
        wait.until(lambda: ctx.control.one_vip_holder_for()
                   and accepts(ctx.inventory.vip, ctx.inventory.port) == "ok", 60,
                   f"exactly one VIP holder, and haproxy accepting on {ctx.inventory.vip}:{ctx.inventory.port}",
                   interval=1.0, why=lambda: f"held by {ctx.control.vip_holders() or 'nobody'}")
        return f"{ctx.control.vip_holders()[0]} holds the VIP; haproxy accepts on it (no apiserver yet)"
    wait.until(lambda: ctx.control.one_vip_holder_for() and readyz(ctx.inventory.vip_url) == "ok", 60,
               f"exactly one VIP holder and {ctx.inventory.vip_url}/readyz", interval=1.0,
               why=lambda: f"held by {ctx.control.vip_holders() or 'nobody'}")
    return f"{ctx.control.vip_holders()[0]} holds the VIP; {ctx.inventory.vip_url}/readyz answers"


def backends_up(ctx: Context) -> str:
    """Each host's haproxy answers, and (with the stats page) sees every apiserver UP."""
    inv = ctx.inventory
    if new_cluster(ctx):
        return "no apiserver yet: the backends come up with kubeadm-init and control-plane-join"

    def down() -> list[str]:
        out = [f"{h.name}: haproxy does not answer" for h in inv.control_plane
               if readyz(f"https://{h.address}:{inv.port}") != "ok"]
        if inv.haproxy_stats:
            for h in inv.control_plane:
                url = inv.haproxy_stats.replace("{address}", h.address)
                states = backend_states(session().get(url, timeout=5).text)
                out += [f"{h.name} sees {srv} {st}" for srv, st in states.items() if not st.startswith("UP")]
                out += [] if len(states) == len(inv.control_plane) else [f"{h.name} has {len(states)} backends"]
        return out
    wait.until(lambda: not down(), 60, "every haproxy to answer with every backend UP", interval=1.0,
               why=lambda: "; ".join(down()))
    return f"{len(inv.control_plane)} haproxies answer, each with {len(inv.control_plane)} backends UP"


def show_restart(ctx: Context) -> str:
    first = ctx.inventory.control_plane[0].name
    return ctx.on_each_host("; ".join(render(ctx.inventory.fault_control, action, first, service)
                                  for service in SERVICES for action in ("enable", "stop", "start")))


def show_configs(ctx: Context) -> str:
    first: Host = ctx.inventory.control_plane[0]
    paths = files(ctx, first.name)
    return ctx.on_each_host(f"render {', '.join(paths.values())} from hakit/templates (VIP {ctx.inventory.vip}, "
                        f"router id {ctx.params['router_id']}, priority {load_balancer(ctx).priority(first)}, "
                        f"backends {', '.join(h.name for h in ctx.inventory.control_plane)}); "
                            + ssh.quote(VALIDATE, paths["haproxy_cfg"], paths["keepalived_conf"]))


RUNBOOK = Runbook(
    installs_cluster=True,   # new_cluster=yes runs before kubeadm-init writes the kubeconfig
    name="provision-api-lb",
    title="Install and configure keepalived and haproxy for the API VIP",
    summary="The kubeadm HA guide's load balancer on every control-plane host: install, render the configs, "
            "check them, restart, and verify the VIP and every backend.",
    params=[Param("router_id", "the VRRP virtual_router_id (unique on the subnet)", "51"),
            Param("new_cluster", "yes: no apiserver runs yet (before kubeadm-init); only the VIP and haproxy "
                  "listening are checked", "no", ("yes", "no"))],
    steps=[
        Step("look", "See what each host has installed and runs, and where the VIP goes",
             lambda ctx: ctx.on_each_host(f"{INSTALLED}; is-active haproxy, keepalived; ip -o -4 addr show"),
             look, changes=False),
        Step("install", "Install keepalived and haproxy where they are missing",
             lambda ctx: f"on {', '.join(ctx.state.get('missing', [])) or 'hosts that lack them'}: {INSTALL}",
             install, verify=installed),
        Step("configure", "Write the track script, keepalived.conf and haproxy.cfg, and check them",
             show_configs, configure, undo=restore_previous, undo_text="put the previous configs back (*.hakit-prev)"),
        Step("restart", "Enable (started at boot) and restart haproxy and keepalived on each host, the VIP holder last",
             show_restart, restart, verify=running),
        Step("vip", "Wait until exactly one host holds the VIP and the API answers on it",
             lambda ctx: f"ip -o -4 addr show on each host; GET {ctx.inventory.vip_url}/readyz; up to 60 s",
             vip_serves, changes=False),
        Step("backends", "Check every haproxy answers and sees every apiserver UP",
             lambda ctx: f"GET https://<host>:{ctx.inventory.port}/readyz and the stats page of each host; up to 60 s",
             backends_up, changes=False),
    ],
    checks=["API-001", "API-003", "API-004", "API-005", "HOST-003"],
    checks_skipped=lambda ctx: "new_cluster=yes: there is no API yet; kubeadm-init verifies it through the VIP"
    if new_cluster(ctx) else None,
)
