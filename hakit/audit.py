"""One audit, in process: the check suites run through pytest with the Inventory
object handed to hakit's plugin, and the Results come back as objects. The CLI
(`check`, `audit`), runbooks' closing checks and `--remediate` all call `run()`.

    results = run(inventory, Selection(check=("ETCD-001", "ETCD-007")), quiet=True)
    results.exit_code, results.by_id["ETCD-001"].outcome
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pytest

from hakit.catalog import CHECKS_DIR
from hakit.errors import (EXIT_CHECK_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_PRECONDITION, EXIT_UNREACHABLE,
                          EXIT_UNVERIFIED, EXIT_USAGE)
from hakit.incidents import Incident
from hakit.inventory import Inventory
from hakit.model import PROPERTIES, Outcome, Result, Verdict


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


@dataclass
class Results:
    """What an audit found: each check's Result, the verdicts, and the serialised document
    (schema hakit.results/v1) that the report writers and `--json` take."""

    results: list[Result]
    verdicts: dict[str, Verdict]
    document: dict[str, Any]
    leftover_faults: list[str]
    incidents: list[Incident] = field(default_factory=list)
    pytest_code: int = 0
    refused: list[str] = field(default_factory=list)   # checks a missing precondition kept from running
    by_id: dict[str, Result] = field(init=False)

    def __post_init__(self) -> None:
        self.by_id = {r.check.id: r for r in self.results}

    @property
    def exit_code(self) -> int:
        """1 a check failed (or a fault is left over), 4 one could not run for a missing
        precondition (another run holds the cluster), 3 for another reason, 5 a property is
        unverified, 0 only when every selected property was verified and holds."""
        if self.pytest_code == pytest.ExitCode.INTERRUPTED:
            return EXIT_INTERRUPTED
        if self.pytest_code in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.NO_TESTS_COLLECTED):
            return EXIT_USAGE
        outcomes = {r.outcome for r in self.results}
        if outcomes & {Outcome.FAIL, Outcome.WARN} or self.leftover_faults:
            return EXIT_CHECK_FAILED
        if Outcome.ERROR in outcomes:
            errors = {r.check.id for r in self.results if r.outcome is Outcome.ERROR}
            return EXIT_PRECONDITION if errors <= set(self.refused) else EXIT_UNREACHABLE
        if Verdict.UNVERIFIED in self.verdicts.values() or not self.results:
            return EXIT_UNVERIFIED
        return EXIT_OK


class Handoff:
    """A pytest plugin object: gives hakit's plugin the Inventory (parsed once, by the
    caller) and takes the Results back when the session ends."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self.results: Results | None = None

    def pytest_configure(self, config: pytest.Config) -> None:
        from hakit.fixtures.plugin import INVENTORY_KEY
        config.stash[INVENTORY_KEY] = self.inventory

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from hakit.fixtures.plugin import results_of
        self.results = results_of(session.config)


def run(inventory: Inventory, selection: Selection = Selection(), *, quiet: bool = False,
        verbose: bool = False, pytest_args: tuple[str, ...] = ()) -> Results:
    """Run the selected checks against the inventory's cluster, in this process. Output:
    hakit's console (hakit.fixtures.console), none when quiet, pytest's own when verbose."""
    # The plugin comes in through its pytest11 entry point; named here only when autoloading is off.
    plugin = ["-p", "hakit.fixtures.plugin"] if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD") else []
    argv = [str(CHECKS_DIR), *plugin, f"--inventory={inventory.source}", f"--rootdir={CHECKS_DIR.parent}",
            "-p", "no:cacheprovider",
            # hakit imported testinfra (its pytest plugin) already: nothing to rewrite, nothing to say
            "-W", "ignore::pytest.PytestAssertRewriteWarning",
            *(["-v", "--tb=no"] if verbose and not quiet else ["-p", "no:terminal"]), *selection.argv(), *pytest_args]
    handoff = Handoff(inventory)
    plugins: list[object] = [handoff]
    if not (quiet or verbose):
        from hakit.fixtures.console import Console
        plugins.append(Console())
    code = pytest.main(argv, plugins=plugins)
    found = handoff.results or Results([], {}, {}, [])
    found.pytest_code = int(code)
    return found
