"""vip-recover: get the API VIP back to exactly one holder.

No holder is an outage of the API endpoint; two holders (split brain) send clients
to two places at once. Either way the usual causes are keepalived or haproxy not
running on some host (the track script then lowers its priority) or hosts that
cannot hear each other's VRRP adverts. This runbook looks, starts what is down,
resolves a split brain by restarting keepalived on all holders but the one with
the highest priority, and waits for exactly one holder.
"""

from __future__ import annotations

from hakit import hosts, wait
from hakit.errors import HakitError
from hakit.runbook import Context, Runbook, Step

SERVICES = ("haproxy", "keepalived")


def look(ctx: Context) -> str:
    found = ctx.control.vip_holders()
    down = [f"{h.name}/{s}" for h in ctx.inventory.control_plane for s in SERVICES
            if not ctx.control.is_active(h.name, s)]
    ctx.state["down"] = down
    what = ("nobody holds the VIP (an outage)" if not found else f"{found[0]} holds the VIP" if len(found) == 1
            else f"split brain: {', '.join(found)} all hold the VIP")
    return f"{what}; not running: {', '.join(down) or 'nothing'}"


def start_down(ctx: Context) -> str:
    for where in ctx.state.get("down", []):
        host, service = where.split("/")
        ctx.control.start(host, service)
    return f"started {', '.join(ctx.state.get('down', [])) or 'nothing (all were running)'}"


def priority(ctx: Context, host: str) -> int:
    conf = ctx.control.read(host, ctx.inventory.host_path("keepalived_conf", host))
    mine = [v for v in hosts.parse_keepalived(conf) if ctx.inventory.vip in v.vips]
    return (mine[0].priority or 0) if mine else 0


def split_brain(ctx: Context) -> str:
    wait.until(ctx.control.vip_holders, 15, "a VIP holder after starting keepalived", interval=1.0)
    found = ctx.control.vip_holders()
    if len(found) < 2:
        return "no split brain"
    keep = max(found, key=lambda h: priority(ctx, h))
    for host in found:
        if host != keep:
            ctx.control.stop(host, "keepalived")
            ctx.control.start(host, "keepalived")
    return f"kept {keep} (highest priority); restarted keepalived on {', '.join(h for h in found if h != keep)}"


def one_holder(ctx: Context) -> str:
    try:
        wait.until(lambda: len(ctx.control.vip_holders()) == 1, 30, "exactly one VIP holder", interval=1.0)
    except wait.WaitTimeout:
        raise HakitError(f"the VIP is held by {ctx.control.vip_holders() or 'nobody'} after 30 s: check that "
                         "VRRP (IP protocol 112) passes between the hosts and that virtual_router_id and auth "
                         "agree") from None
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
        Step("one-holder", "Wait until exactly one host holds the VIP", lambda ctx: "poll every second, up to 30 s",
             one_holder, changes=False),
    ],
    checks=["API-001", "API-004", "HOST-003"],
)
