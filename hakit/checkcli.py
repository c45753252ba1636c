"""`hakit check`, `hakit audit` and `hakit report`: run the check suites through
pytest and turn their results into reports and an exit code a CI can use."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hakit import audit
from hakit.catalog import checks
from hakit.catalog import markdown as catalog_markdown
from hakit.cluster.probes import readyz
from hakit.errors import EXIT_OK, ConfigError, UnreachableError
from hakit.inventory import Inventory, default_path, load
from hakit.model import PROPERTIES
from hakit.report import read_json, write_html
from hakit.report.publish import publish
from hakit.results import Results
from hakit.selection import OPTIONS, Selection, add_inventory_option
from hakit.table import table

SELECT_HELP = f"properties: {', '.join(PROPERTIES)}"


def add_check_commands(sub: argparse._SubParsersAction) -> None:
    for name, helptext in (("check", "run the read-only HA checks"),
                           ("audit", "run the checks and write every report under reports/")):
        p = sub.add_parser(name, help=helptext, description=f"{helptext}. {SELECT_HELP}. "
                           "Arguments after `--` go to pytest.")
        add_inventory_option(p)
        for option in OPTIONS:   # declared once, in hakit.audit; the pytest plugin takes them as --hakit-NAME
            option.add(p.add_argument)
        p.add_argument("--list", action="store_true", help="list the checks (id, property, severity, title) and exit")
        p.add_argument("--markdown", action="store_true", help="with --list: the reference of every check, as "
                       "docs/checks.md holds it (record, why, remediation, runbook)")
        p.add_argument("-v", "--verbose", action="store_true", help="pytest's own output (one line per test, "
                       "its session header) instead of hakit's; so do arguments after `--`")
        if name == "check":
            p.add_argument("--json", metavar="PATH", help="also write the JSON results file (schema hakit.results/v1)")
        p.add_argument("pytest_args", nargs="*", help=argparse.SUPPRESS)
        if name == "audit":
            p.add_argument("--reports", default="reports", help="directory for the reports (default reports/)")
            p.add_argument("--remediate", action="append", default=[], metavar="RUNBOOK",
                           help="after the checks, run this runbook unattended if a failing check names it and it "
                           "needs no parameter (repeatable); its run goes into the report. The exit code still "
                           "says a check failed")
        p.set_defaults(func=cmd_check if name == "check" else cmd_audit)
    cluster_command(sub, "diagnose", cmd_diagnose, "the incident view: each cause, what it explains, the command "
                    "that repairs it (read-only checks; the first thing to run on call)",
                    "Runs the read-only checks quietly and groups what fails by cause: a failing component none of "
                    "whose dependencies fails is a cause, and the findings it explains are folded under it, with "
                    "the runbook command that repairs it, parameters filled. A fault an interrupted hakit run left "
                    "in effect is always the first incident. Exit code as for `check`.")
    cluster_command(sub, "repair", cmd_repair, "undo every fault a crashed or killed run left behind (from its "
                    "journal)", "Reads the inventory's fault journal (disruptive.journal) and undoes each fault "
                    "injected but never restored: starts what was stopped, heals a partition, undoes a drain "
                    "(uncordon, then spread again what it moved), removes a probe namespace, waits for a "
                    "self-healing link. The first disruptive check of every run does the same.")
    rep = sub.add_parser("report", help="render the HTML audit report from a JSON results file, or the history",
                         description="hakit report RESULTS.json: the audit page again. hakit report history DIR: "
                         "every audit under DIR on one page (verdicts and durations over time, regressions first).")
    rep.add_argument("results", help="a results.json written by `hakit audit`, or `history`")
    rep.add_argument("directory", nargs="?", help="with `history`: the reports directory (default reports/)")
    rep.add_argument("-o", "--output", help="HTML file to write (default: audit.html beside the JSON; "
                     "history.html in the directory)")
    rep.add_argument("--runbooks", metavar="DIR", help="with `history`: where runbook runs are journaled, shown "
                     "beside the audits (default: $HAKIT_RUNBOOK_DIR, else ~/.local/state/hakit/runbooks)")
    rep.set_defaults(func=cmd_report)


def cluster_command(sub: argparse._SubParsersAction, name: str, func: Callable[[argparse.Namespace], int],
                    helptext: str, description: str) -> None:
    """A subcommand that takes only the cluster it works on."""
    p = sub.add_parser(name, help=helptext, description=description)
    add_inventory_option(p)
    p.set_defaults(func=func)


def add_inventory_commands(sub: argparse._SubParsersAction) -> None:
    inv = sub.add_parser("inventory", help="write or validate an inventory")
    inv_sub = inv.add_subparsers(dest="inventory_command", required=True, parser_class=type(inv))
    disc = inv_sub.add_parser("discover", help="write a starting inventory from a kubeconfig")
    disc.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG", "~/.kube/config"))
    disc.add_argument("--context")
    disc.add_argument("-o", "--output", required=True, help="file to write (refuses to overwrite without --force)")
    disc.add_argument("--force", action="store_true")
    disc.set_defaults(func=cmd_discover)
    val = inv_sub.add_parser("validate", help="check an inventory file and say what is wrong")
    val.add_argument("file")
    val.set_defaults(func=cmd_validate)


def cmd_validate(args: argparse.Namespace) -> int:
    inv = load(Path(args.file))
    print(f"{args.file}: valid ({len(inv.control_plane)} control-plane hosts)")
    return 0


def cmd_discover(args: argparse.Namespace) -> int:
    from hakit import discover
    dest = Path(args.output)
    if dest.exists() and not args.force:
        raise ConfigError(f"{dest} exists; pass --force to overwrite it")
    doc = discover.discover(Path(os.path.expanduser(args.kubeconfig)), args.context)
    discover.write(doc, dest)
    print(f"wrote {dest}: {len(doc['control_plane']['hosts'])} control-plane hosts; "
          f"fill in access and monitoring, then `hakit check --inventory {dest}`")
    return 0


def _inventory_path(args: argparse.Namespace) -> Path:
    return default_path(args.inventory)


def preflight(inv: Inventory) -> None:
    """Exit 3 early when no apiserver answers at all (neither the kubeconfig's server
    nor any control-plane host): every check would only say the same thing."""
    from hakit.kube import api_client
    server = api_client(inv.kubeconfig, inv.context).configuration.host
    urls = [server] + [f"https://{h.address}:{inv.apiserver_port}" for h in inv.control_plane]
    for url in urls:
        got = readyz(url, timeout=5)
        if got == "ok" or got.startswith("HTTP "):   # any answer: a sick apiserver is the checks' to report
            return
    raise UnreachableError(f"no apiserver answers: tried {', '.join(urls)}")


def list_checks(markdown: bool = False) -> int:
    if markdown:
        print(catalog_markdown(), end="")
        return EXIT_OK
    rows = [(c.id, c.property, c.severity.value, c.title) for _, c in checks()]
    print(table(("ID", "PROPERTY", "SEVERITY", "TITLE"), rows))
    return EXIT_OK


def run_checks(args: argparse.Namespace, extra: list[str]) -> tuple[int, Results | None, Inventory | None]:
    """Run the checks the flags select; (exit code, results, inventory)."""
    if args.list:
        return list_checks(args.markdown), None, None
    inv = load(_inventory_path(args))
    preflight(inv)
    results = audit.run(inv, Selection.from_args(args), verbose=args.verbose or bool(args.pytest_args),
                        pytest_args=(*extra, *args.pytest_args))
    return results.exit_code, results, inv


def publish_results(doc: dict, args: argparse.Namespace, json: Path | None = None, html: Path | None = None) -> None:
    """The one place a CLI run's results are written (after a remediation, if any, is in them)."""
    why = publish(doc, json=json, html=html, textfile=Path(args.metrics) if args.metrics else None,
                  pushgateway=args.pushgateway)
    if why:
        print(f"hakit: metrics not pushed: {why}", file=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    code, results, _ = run_checks(args, [])
    if results is not None and results.document:
        publish_results(results.document, args, json=Path(args.json) if args.json else None)
    return code


def cmd_audit(args: argparse.Namespace) -> int:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = Path(args.reports) / f"audit-{stamp}"  # made by the first report written into it
    extra = [f"--html={out / 'pytest.html'}", "--self-contained-html", f"--junitxml={out / 'junit.xml'}"]
    if args.remediate:
        from hakit.runbook import load_all
        unknown = sorted(set(args.remediate) - set(load_all()))
        if unknown:
            raise ConfigError(f"--remediate: no runbook {', '.join(unknown)} (`hakit runbook list`)")
    code, results, inv = run_checks(args, extra)
    if results is None or inv is None or not results.document:
        return code
    if args.remediate:
        remediate_into(results, inv, args.remediate)
    publish_results(results.document, args, json=out / "results.json", html=out / "audit.html")
    latest = Path(args.reports) / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(out.name)
    print(f"\nreports: {out}/ (audit.html, results.json, pytest.html, junit.xml); {latest} points at it")
    return code


def remediate_into(results: Results, inv: Inventory, allowed: list[str]) -> None:
    """Run the allowed runbooks for what failed, and put their runs into the results document."""
    from hakit.runbook.remediate import remediate
    doc = results.document
    doc["remediation"] = remediate(results.results, results.incidents, inv, allowed, print)
    for run in doc["remediation"]:
        print(f"remediation: {run['runbook']} for {', '.join(run['for_checks'])}: {run['status']}")


def cmd_diagnose(args: argparse.Namespace) -> int:
    from hakit.incidents import incident_lines
    inv = load(_inventory_path(args))
    preflight(inv)
    results = audit.run(inv, Selection(), quiet=True)
    failing = sum(i.explained and bool(i.findings) for i in results.incidents)
    print(f"hakit diagnose: {len(results.results)} read-only checks of {inv.name}: "
          + (f"{len(results.incidents)} incident(s)" if results.incidents else "no incident, every check passed"))
    for line in incident_lines(results.incidents):
        print(line)
    if failing:
        print("\nafter a repair, `hakit diagnose` again; `hakit audit` writes the full report")
    return results.exit_code


def cmd_repair(args: argparse.Namespace) -> int:
    from hakit.cluster import Cluster
    from hakit.faults.base import repair
    undone = repair(Cluster(load(_inventory_path(args))))
    print("\n".join(f"undone: {what}" for what in undone) or "nothing to repair: no fault left in effect")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    if args.results == "history":
        from hakit.report.history import collect, regressions, runbook_runs, write_history
        from hakit.runbook.run import state_dir
        where = Path(args.directory or "reports")
        docs = collect(where)
        dest = Path(args.output) if args.output else where / "history.html"
        write_history(docs, dest, runbook_runs(Path(args.runbooks) if args.runbooks else state_dir()))
        found = regressions(docs)
        print(f"wrote {dest}: {len(docs)} audits; " + (f"{len(found)} regression(s) since the audit before"
                                                      if found else "no regression since the audit before"))
        return 0
    src = Path(args.results)
    doc = read_json(src)
    dest = Path(args.output) if args.output else src.with_name("audit.html")
    write_html(doc, dest)
    print(f"wrote {dest}")
    return 0
