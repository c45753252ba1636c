"""The `hakit` command line. Every error becomes one line and an exit code:
0 passed, 1 a check failed, 2 bad usage or input, 3 target unreachable,
4 a precondition is missing (tool, root, lab), 5 unverified (a check skipped),
130 interrupted."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hakit import __version__
from hakit.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, HakitError
from hakit.labcli import add_lab_commands

EPILOG = """\
exit codes: 0 every property verified and holding, 1 a check failed (or a fault of an
            earlier run is still in effect), 2 bad usage or input, 3 target unreachable,
            4 missing precondition, 5 unverified (a check was skipped), 130 interrupted

first steps:
  hakit lab up                  bring up the local HA lab (root; see `hakit lab doctor`)
  hakit audit                   audit the cluster in $HAKIT_INVENTORY (the lab's by default)
  hakit diagnose                on call: what is broken, what it explains, the command that repairs it
  hakit audit --disruptive      also measure real failovers (breaks one thing at a time, restores it)
  hakit runbook list            the procedures that repair what a check finds
  hakit report history reports/ every audit on one page, regressions first
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as every other usage error
        print(f"hakit: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hakit", description="Prove a self-managed HA Kubernetes cluster is highly available.",
                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"hakit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    add_lab_commands(sub)
    from hakit.checkcli import add_check_commands, add_inventory_commands
    add_check_commands(sub)
    add_inventory_commands(sub)
    from hakit.runbook.cli import add_runbook_commands
    add_runbook_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse leaves KEY=VALUE parameters that follow an option (run NAME --yes k=v) unparsed.
    if hasattr(args, "params") and all("=" in e and not e.startswith("-") for e in extra):
        args.params += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.func(args) or EXIT_OK)
    except HakitError as e:   # one line, whatever the input it quotes held
        print("hakit: " + str(e).replace("\r", "\\r").replace("\n", "\\n"), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("hakit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
