"""Which checks an audit runs, and how: its options, declared once for the CLI (`hakit check
--disruptive`) and for the pytest plugin (`pytest --hakit-disruptive`)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from hakit.model import PROPERTIES


def add_inventory_option(parser: argparse.ArgumentParser) -> None:
    """The --inventory option of every command that works on a cluster (hakit.inventory.default_path)."""
    parser.add_argument("--inventory", help="inventory YAML (default: $HAKIT_INVENTORY, else the local lab's)")


@dataclass(frozen=True)
class Option:
    """One option of an audit, declared once: the CLI adds it as --NAME, the pytest plugin as
    --hakit-NAME (hakit.fixtures.plugin), so `hakit check` and plain pytest take the same."""

    name: str
    help: str
    kind: str = "value"          # "value", "repeat" (append) or "flag"
    metavar: str | None = None
    choices: tuple[str, ...] = ()

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    def add(self, add_argument: Any, prefix: str = "") -> None:
        kwargs: dict[str, Any] = {"help": self.help}
        if self.kind == "flag":
            kwargs["action"] = "store_true"
        else:
            kwargs["metavar"] = self.metavar
            if self.kind == "repeat":
                kwargs.update(action="append", default=[])
            if self.choices:
                kwargs["choices"] = list(self.choices)
        add_argument(f"--{prefix}{self.name}", **kwargs)


OPTIONS = (
    Option("property", "only checks of this HA property (repeatable)", "repeat", "NAME", tuple(PROPERTIES)),
    Option("check", "only this check id (repeatable)", "repeat", "ID"),
    Option("accept-skip", "a skip of this check (e.g. ETCD-008 where no backup dir is reachable) does not make its "
           "property unverified or the exit code 5 (repeatable)", "repeat", "ID"),
    Option("disruptive", "also run the disruptive checks the inventory's disruptive.allowed permits: they stop, "
           "kill or cut things on purpose, measure the failover, and restore (see `hakit repair`)", "flag"),
    Option("silence", "with --disruptive: silence in Alertmanager exactly the alerts the alert-delivery checks "
           "expect, so on-call is not paged; they still verify the alerts reached Alertmanager", "flag"),
    Option("metrics", "also write the results as Prometheus metrics (node_exporter textfile format)", metavar="PATH"),
    Option("pushgateway", "also push the results as Prometheus metrics to a Pushgateway (job=hakit, "
           "cluster=NAME)", metavar="URL"),
)


@dataclass(frozen=True)
class Selection:
    """Which checks run, and how: the values of OPTIONS, one field each."""

    property: tuple[str, ...] = ()
    check: tuple[str, ...] = ()
    accept_skip: tuple[str, ...] = ()
    disruptive: bool = False
    silence: bool = False
    metrics: str | None = None
    pushgateway: str | None = None

    @classmethod
    def from_args(cls, args: Any) -> Selection:
        """From the CLI's parsed arguments."""
        return cls(**{o.dest: tuple(v) if o.kind == "repeat" else v for o in OPTIONS for v in [getattr(args, o.dest)]})

    def argv(self) -> list[str]:
        """The same, as the pytest plugin's options."""
        out: list[str] = []
        for o in OPTIONS:
            value = getattr(self, o.dest)
            if o.kind == "repeat":
                out += [f"--hakit-{o.name}={v}" for v in value]
            elif o.kind == "flag":
                out += [f"--hakit-{o.name}"] if value else []
            elif value is not None:
                out.append(f"--hakit-{o.name}={value}")
        return out
