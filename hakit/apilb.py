"""The API load balancer on the control-plane hosts, as the kubeadm HA guide
(ha-considerations.md) lays it out: keepalived holds the VIP on one host, and its
track script gives the VIP up when the host's haproxy stops answering; haproxy on
every host balances TCP to every kube-apiserver, health-checked on /readyz.

One home for these configs: the lab renders its hosts' files with them, and the
provision-api-lb runbook renders a real cluster's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jinja2

from hakit.errors import ConfigError
from hakit.inventory import Host

if TYPE_CHECKING:   # hakit.hosts imports testinfra: not for the lab's fast-starting ctl
    from hakit.hosts import VrrpInstance

# Characters that would end a value in keepalived.conf or haproxy.cfg and start something
# else (a newline adds a `notify_master` script run as root; quotes, braces and comment
# marks change the structure). No value hakit renders needs one.
UNSAFE = re.compile(r"[\s\"'\\{}#!;$`]")


def _inert(value: object) -> object:
    """Every value rendered into a config: refused, naming it, if it could change the config's shape."""
    if isinstance(value, str) and UNSAFE.search(value):
        raise ConfigError(f"refusing to render {value[:40]!r} into a load balancer config: it holds a "
                          "space, newline, quote, brace or comment character")
    return value


TEMPLATES = jinja2.Environment(loader=jinja2.PackageLoader("hakit", "templates"), finalize=_inert,
                               undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
PRIORITY_TOP, PRIORITY_STEP = 110, 5   # distinct, so the VIP has a preferred home: the first host
TRACK_WEIGHT = 20                      # what a failing track script takes off (the template's weight)
BACKEND = "apiserverbackend"           # haproxy's backend name, as API-003 reads it from the stats


@dataclass(frozen=True)
class LoadBalancer:
    vip: str
    prefix: int                 # the VIP's netmask length, as on the hosts' subnet
    port: int                   # where haproxy listens (8443 in the kubeadm guide)
    apiserver_port: int
    hosts: list[Host]           # every control-plane host: each runs both, each is a backend
    router_id: int = 51
    auth_pass: str = ""
    stats_port: int | None = None
    advert_int: float = 1.0

    def priority(self, host: Host) -> int:
        return PRIORITY_TOP - PRIORITY_STEP * [h.name for h in self.hosts].index(host.name)

    def keepalived_conf(self, host: Host, interface: str, check_script: str) -> str:
        top = self.priority(host) == PRIORITY_TOP
        return TEMPLATES.get_template("keepalived.conf.j2").render(
            host=host, check_script=check_script, state="MASTER" if top else "BACKUP", interface=interface,
            virtual_router_id=self.router_id, priority=self.priority(host), advert_int=f"{self.advert_int:g}",
            auth_pass=self.auth_pass, vip=self.vip, prefix=self.prefix)

    def haproxy_cfg(self, host: Host, stats_socket: str = "/run/haproxy/admin.sock") -> str:
        return TEMPLATES.get_template("haproxy.cfg.j2").render(
            host=host, stats_socket=stats_socket, lb_port=self.port, apiserver_port=self.apiserver_port,
            stats_port=self.stats_port, backends=self.hosts)

    def check_script(self) -> str:
        return TEMPLATES.get_template("check_apiserver.sh.j2").render(lb_port=self.port)


def backend_states(csv: str, backend: str = BACKEND) -> dict[str, str]:
    """server name -> status from haproxy's `show stat` CSV."""
    lines = csv.strip().splitlines()
    header = lines[0].lstrip("# ").split(",")
    out = {}
    for line in lines[1:]:
        row = dict(zip(header, line.split(","), strict=False))
        if row.get("pxname") == backend and row.get("svname") not in ("FRONTEND", "BACKEND"):
            out[row["svname"]] = row.get("status", "")
    return out


def disagreements(instances: dict[str, VrrpInstance]) -> tuple[list[str], dict[str, object]]:
    """What makes keepalived peers each elect themselves (split brain) or keep the VIP on a
    dead load balancer; and the values compared, for evidence. The VRRP password is shown
    as which hosts share one, never as itself."""
    problems: list[str] = []
    shown: dict[str, object] = {}
    for attr in ("virtual_router_id", "auth_pass"):
        values = {n: getattr(i, attr) for n, i in instances.items()}
        if attr == "auth_pass":
            groups = list(dict.fromkeys(values.values()))
            values = {n: f"group {groups.index(v) + 1}" for n, v in values.items()}
        shown[attr] = "same on all" if len(set(values.values())) == 1 else values
        if len(set(values.values())) > 1:
            problems.append(f"{attr} differs: " + ", ".join(f"{n}={v}" for n, v in values.items()))
    shown["priorities"] = priorities = {n: i.priority for n, i in instances.items()}
    if len(set(priorities.values())) != len(priorities):
        problems.append(f"priorities are not distinct: {priorities}")
    untracked = [n for n, i in instances.items() if not i.track_scripts]
    if untracked:
        problems.append(f"no track_script on {', '.join(untracked)}: the VIP stays on a host whose haproxy is dead")
    return problems, shown
