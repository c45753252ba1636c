"""monitoring-restart: start (or restart) Prometheus or an Alertmanager on one of the
inventory's monitoring hosts, and see the alert chain whole again.

A lost Alertmanager peer leaves alerts routed by the others, but silences and notification
deduplication are no longer shared, and one more loss stops every page (MON-007); a stopped
Prometheus evaluates no rule at all (MON-001). The restart is the host's service manager's:
the systemd units `prometheus` and `prometheus-alertmanager` (Debian's, as provision-monitoring
installs them), or the inventory's `disruptive.control`. hakit then waits until Prometheus is
ready, or until the Alertmanager the inventory names sees every peer again.
"""

from __future__ import annotations

from hakit import wait
from hakit.cluster.components import MONITORING_COMPONENTS, SYSTEMD_UNITS, restart_command
from hakit.errors import HakitError, UnreachableError
from hakit.prometheus import Alertmanager, Prometheus
from hakit.runbook import Context, Param, Runbook, Step


def where(ctx: Context) -> tuple[str, str]:
    """One of the inventory's monitoring.hosts (each runs an Alertmanager; Prometheus the first)."""
    host, component = ctx.params["host"], ctx.params["component"]
    if host not in {h.name for h in ctx.inventory.monitoring_hosts}:
        raise HakitError(f"host={host}: not one of the inventory's monitoring.hosts")
    return host, component


def serving(ctx: Context) -> str | None:
    """What says it serves again, or None: Prometheus ready; every Alertmanager peer seen by the
    one the inventory names (monitoring.alertmanager_peers of them, else every monitoring host)."""
    host, component = where(ctx)
    if not ctx.control.is_active(host, component):
        return None
    inv = ctx.inventory
    try:
        if component == "prometheus":
            return "Prometheus ready" if inv.prometheus_url is None or Prometheus(inv.prometheus_url).ready() \
                else None
        if inv.alertmanager_url is None:
            return "running"
        peers = Alertmanager(inv.alertmanager_url).status().get("cluster", {}).get("peers") or []
    except UnreachableError:
        return None
    expected = inv.alertmanager_peers or len(inv.monitoring_hosts)
    return f"the Alertmanager cluster sees {len(peers)} of {expected} peers" if len(peers) >= expected else None


def restart(ctx: Context) -> str:
    host, component = where(ctx)
    ctx.control.restart(host, component)
    return f"{component} on {host} stopped and started"


def running(ctx: Context) -> None:
    host, component = where(ctx)
    if not ctx.control.is_active(host, component):
        raise HakitError(f"{component} on {host} is not running after the start: read its log "
                         f"(journalctl -u {SYSTEMD_UNITS[component]})")


def commands(ctx: Context) -> str:
    return restart_command(ctx.inventory.fault_control, *where(ctx))


RUNBOOK = Runbook(
    name="monitoring-restart",
    title="Start or restart Prometheus or an Alertmanager on one monitoring host",
    summary="For a stopped or stuck Prometheus or Alertmanager peer: restart it and wait until Prometheus is ready "
            "or the Alertmanager cluster sees every peer, then the monitoring checks pass.",
    params=[Param("host", "the monitoring host, as named in the inventory's monitoring.hosts"),
            Param("component", "what to restart", choices=MONITORING_COMPONENTS)],
    steps=[
        Step("look", "See whether it serves now", lambda ctx: "{} on {}: is it running and serving".format(
            *reversed(where(ctx))), lambda ctx: serving(ctx) or "not serving", changes=False),
        Step("restart", "Restart it (stop, then start)", commands, restart, verify=running),
        Step("serving", "Wait until it serves again", lambda ctx: "poll every second, up to 120 s",
             lambda ctx: wait.until(lambda: serving(ctx), 120, "{} on {} to serve again".format(*reversed(
                 where(ctx))), interval=1.0), changes=False),
    ],
    checks=["MON-001", "MON-004", "MON-007"],
)
