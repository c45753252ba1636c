"""vip-recover: get the API VIP back to exactly one holder.

No holder is an outage of the API endpoint; two holders (split brain) send clients
to two places at once. Either way the usual causes are keepalived or haproxy not
running on some host (the track script then lowers its priority), hosts that
cannot hear each other's VRRP adverts, or keepalived configs that disagree (each
router id or password is its own VRRP group, whose only member elects itself).
This runbook looks (and names a config disagreement, which provision-api-lb
repairs), starts what is down, resolves a split brain by restarting keepalived on
all holders but the one with the highest priority, and waits for exactly one holder.
"""

from __future__ import annotations

from hakit import apilb, hosts, wait
from hakit.cluster.network import VRRP_SETTLE
from hakit.errors import HakitError
from hakit.runbook import Context, Runbook, Step

SERVICES = ("haproxy", "keepalived")


def look(ctx: Context) -> str:
    found = ctx.control.vip_holders()
    down = [f"{h.name}/{s}" for h in ctx.inventory.control_plane for s in SERVICES
            if not ctx.control.is_active(h.name, s)]
    ctx.state["down"] = down
    ctx.state["drift"] = apilb.disagreements(vrrp(ctx))[0]
    what = ("nobody holds the VIP (an outage)" if not found else f"{found[0]} holds the VIP" if len(found) == 1
            else f"split brain: {', '.join(found)} all hold the VIP")
    return (f"{what}; not running: {', '.join(down) or 'nothing'}; keepalived configs: "
            f"{'; '.join(ctx.state['drift']) or 'agree'}")


def vrrp(ctx: Context) -> dict[str, hosts.VrrpInstance]:
    """Each host's vrrp_instance for the VIP, from its keepalived.conf."""
    out = {}
    for h in ctx.inventory.control_plane:
        conf = ctx.control.run(h.name, "cat -- %s", ctx.inventory.host_path("keepalived_conf", h.name))
        mine = [v for v in hosts.parse_keepalived(conf.stdout) if ctx.inventory.vip in v.vips]
        if mine:
            out[h.name] = mine[0]
    return out


def start_down(ctx: Context) -> str:
    for where in ctx.state.get("down", []):
        host, service = where.split("/")
        ctx.control.start(host, service)
    return f"started {', '.join(ctx.state.get('down', [])) or 'nothing (all were running)'}"


def split_brain(ctx: Context) -> str:
    wait.until(ctx.control.vip_holders, 15, "a VIP holder after starting keepalived", interval=1.0)
    found = ctx.control.vip_holders()
    if len(found) < 2:
        return "no split brain"
    instances = vrrp(ctx)
    keep = max(found, key=lambda h: getattr(instances.get(h), "priority", 0) or 0)
    for host in found:
        if host != keep:
            ctx.control.stop(host, "keepalived")
            ctx.control.start(host, "keepalived")
    return f"kept {keep} (highest priority); restarted keepalived on {', '.join(h for h in found if h != keep)}"


def one_holder(ctx: Context) -> str:
    try:
        wait.until(lambda: ctx.control.one_vip_holder_for(), 45, "exactly one VIP holder, steadily",
                   interval=1.0)
    except wait.WaitTimeout:
        held = f"the VIP is held by {', '.join(ctx.control.vip_holders()) or 'nobody'} after 45 s"
        if ctx.state.get("drift"):
            raise HakitError(f"{held}: the keepalived configs disagree ({'; '.join(ctx.state['drift'])}); "
                             "`hakit runbook run provision-api-lb` renders them from one template") from None
        raise HakitError(f"{held}: check that VRRP (IP protocol 112) passes between the hosts") from None
    return f"{ctx.control.vip_holders()[0]} holds the VIP"


RUNBOOK = Runbook(
    name="vip-recover",
    title="Get the API VIP back to exactly one holder",
    summary="For no VIP holder or two: start keepalived and haproxy where they are down, resolve a split "
            "brain, and wait for exactly one holder.",
    steps=[
        Step("look", "See who holds the VIP and what is not running",
             lambda ctx: f"ip -o -4 addr show; {' / '.join(SERVICES)} is-active, on every control-plane host",
             look, changes=False),
        Step("start", "Start keepalived and haproxy where they are down",
             lambda ctx: "start " + (", ".join(ctx.state["down"]) if "down" in ctx.state else "what `look` finds down"),
             start_down),
        Step("split-brain", "If two hosts hold the VIP, restart keepalived on all but the highest priority",
             lambda ctx: "compare priorities in each holder's keepalived.conf; restart keepalived on the others",
             split_brain),
        Step("one-holder", "Wait until exactly one host holds the VIP, steadily",
             lambda ctx: f"poll every second until one holder for {VRRP_SETTLE:g} s, up to 45 s",
             one_holder, changes=False),
    ],
    checks=["API-001", "API-004", "HOST-003"],
)
