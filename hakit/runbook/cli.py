"""`hakit runbook list | show | run | resume`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hakit.errors import ConfigError
from hakit.inventory import Inventory, default_path, load
from hakit.runbook import Context, Param, Runbook, get, load_all
from hakit.runbook import run as runner
from hakit.selection import add_inventory_option
from hakit.table import table

RUNBOOK_HELP = """\
Executable runbooks: the procedure an operator follows, one confirmed step at a time.

  hakit runbook list                         what there is
  hakit runbook show etcd-backup keep=3      every step with its resolved command; changes nothing
  hakit runbook show etcd-backup --markdown  the procedure for a wiki
  hakit runbook run etcd-backup --dry-run    the same as show, for the run you are about to do
  hakit runbook run etcd-backup keep=3       asks before each changing step (--yes: does not ask)
  hakit runbook resume RUN_ID                continues an interrupted run; finished steps are not repeated

Every run is journaled under $HAKIT_RUNBOOK_DIR (default ~/.local/state/hakit/runbooks) and
ends by running the checks of the property it repairs: it succeeded only if they pass.
"""


def add_runbook_commands(sub: argparse._SubParsersAction) -> None:
    rb = sub.add_parser("runbook", help="executable runbooks: provisioning and guided remediation",
                        description=RUNBOOK_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    rb_sub = rb.add_subparsers(dest="runbook_command", required=True, parser_class=type(rb))
    rb_sub.add_parser("list", help="the runbooks, their parameters and the checks that verify them"
                      ).set_defaults(func=cmd_list)
    for name, helptext in (("show", "print the procedure with its resolved commands; changes nothing"),
                           ("run", "run it, asking before each step that changes something")):
        p = rb_sub.add_parser(name, help=helptext)
        p.add_argument("name")
        p.add_argument("params", nargs="*", metavar="KEY=VALUE", help="the runbook's parameters")
        add_inventory_option(p)
        if name == "show":
            p.add_argument("--markdown", action="store_true", help="Markdown, for a wiki")
            p.set_defaults(func=cmd_show)
        else:
            p.add_argument("--dry-run", action="store_true", help="print what it would do and change nothing")
            p.add_argument("--yes", action="store_true", help="do not ask before each changing step")
            p.set_defaults(func=cmd_run)
    res = rb_sub.add_parser("resume", help="continue an interrupted run without repeating finished steps")
    res.add_argument("run_id")
    res.add_argument("--yes", action="store_true", help="do not ask before each changing step")
    res.set_defaults(func=cmd_resume)


def _inventory(args: argparse.Namespace, rb: Runbook) -> Inventory:
    return load(default_path(args.inventory), cluster_exists=not rb.installs_cluster)


def _params(pairs: list[str]) -> dict[str, str]:
    bad = [p for p in pairs if "=" not in p]
    if bad:
        raise ConfigError(f"parameters are KEY=VALUE; got {', '.join(bad)}")
    return dict(p.split("=", 1) for p in pairs)


def _confirm(prompt: str) -> bool:
    return input(prompt).strip().lower() in ("y", "yes")


def _attended(yes: bool) -> None:
    """Asking needs someone to answer: refuse before anything is journaled or done."""
    if not yes and not sys.stdin.isatty():
        raise ConfigError("steps that change the cluster ask first and stdin is not a terminal: "
                          "pass --yes to run unattended, or --dry-run to see the steps")


def cmd_list(args: argparse.Namespace) -> int:
    def param(p: Param) -> str:   # required: host=…; optional: [keep=7], [dir=] (empty: a default it finds)
        return f"{p.name}=…" if p.default is None else f"[{p.name}={p.default}]"
    rows = [(rb.name, rb.title, " ".join(param(p) for p in rb.params) or "-", ", ".join(rb.checks))
            for rb in load_all().values()]
    print(table(("RUNBOOK", "WHAT", "PARAMETERS", "VERIFIED BY"), rows))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    rb = get(args.name)
    print(runner.render(rb, Context(_inventory(args, rb), rb.resolve(_params(args.params))), markdown=args.markdown))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    rb = get(args.name)
    inv, params = _inventory(args, rb), rb.resolve(_params(args.params))
    if args.dry_run:
        print(runner.render(rb, Context(inv, params)))
        print("\ndry run: nothing was changed")
        return 0
    _attended(args.yes)
    runner.start(rb, inv, params, args.yes, _confirm, print)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    _attended(args.yes)
    runner.resume(args.run_id, load_all(), lambda path, rb: load(Path(path), cluster_exists=not rb.installs_cluster),
                  args.yes, _confirm, print)
    return 0
