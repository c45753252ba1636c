"""One audit, in process: the check suites run through pytest with the Inventory
object handed to hakit's plugin, and the Results come back as objects. The CLI
(`check`, `audit`), runbooks' closing checks and `--remediate` all call `run()`.

    results = run(inventory, Selection(check=("ETCD-001", "ETCD-007")), quiet=True)
    results.exit_code, results.by_id["ETCD-001"].outcome
"""

from __future__ import annotations

import os

import pytest

from hakit.catalog import CHECKS_DIR
from hakit.inventory import Inventory
from hakit.results import Results
from hakit.selection import Selection


class Handoff:
    """A pytest plugin object: gives hakit's plugin the Inventory (parsed once, by the
    caller) and takes the Results back when the session ends."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self.results: Results | None = None

    def pytest_configure(self, config: pytest.Config) -> None:
        from hakit.fixtures.plugin import CALLER_PUBLISHES_KEY, INVENTORY_KEY
        config.stash[INVENTORY_KEY] = self.inventory
        config.stash[CALLER_PUBLISHES_KEY] = True   # hakit.report.publish, by the caller, once

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
            # No check is property-based: where hypothesis is installed (hakit's own test venv), its
            # plugin is 0.3 s of every run's start-up (bench/import_time.py).
            "-p", "no:hypothesispytest",
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
