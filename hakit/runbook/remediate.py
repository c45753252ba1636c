"""Runbooks run from an audit (`hakit audit --remediate NAME`): after the checks, each
runbook the operator named that repairs a failing check runs unattended, ends with its
own checks, and its run (steps, outputs, checks after) goes into the audit's report.

Only the runbooks named are run, and only those that need no parameter the audit
cannot know (which host, which component): the others are listed with the command
to run by hand. The audit's exit code still says a check failed: it did, and the
report says what repaired it.
"""

from __future__ import annotations

from typing import Any

from hakit.errors import HakitError
from hakit.inventory import Inventory
from hakit.model import Outcome, Result
from hakit.runbook import Runbook, load_all
from hakit.runbook import run as runner


def plan(results: list[Result], allowed: list[str], books: dict[str, Runbook]) -> dict[str, list[str]]:
    """Runbook name -> the failing checks it repairs, for the runbooks named in allowed."""
    out: dict[str, list[str]] = {}
    for r in results:
        name = r.check.runbook
        if r.outcome in (Outcome.FAIL, Outcome.WARN) and name in allowed and name in books:
            out.setdefault(name, []).append(r.check.id)
    return out


def remediate(results: list[Result], inv: Inventory, allowed: list[str], out: runner.Print) -> list[dict[str, Any]]:
    """Run what the plan says; a run that fails does not stop the next."""
    books = load_all()
    unknown = sorted(set(allowed) - set(books))
    if unknown:   # checked before the audit too; here for callers that skip that
        raise HakitError(f"--remediate: no runbook {', '.join(unknown)} (`hakit runbook list`)")
    runs = []
    for name, checks in plan(results, allowed, books).items():
        rb = books[name]
        needs = [p.name for p in rb.params if p.default is None]
        if needs:
            runs.append({"runbook": name, "title": rb.title, "for_checks": checks, "status": "not run", "checks": {},
                         "error": f"needs {', '.join(needs)}: run it by hand, "
                                  f"hakit runbook run {name} {' '.join(f'{p}=…' for p in needs)}", "steps": []})
            continue
        run_id = runner.new_run_id(rb)
        out(f"\nremediating {', '.join(checks)} with runbook {name} (run {run_id})")
        try:
            runner.start(rb, inv, rb.resolve({}), yes=True, confirm=lambda _: False, out=out, run_id=run_id)
        except HakitError as e:
            out(f"{name}: {e}")
        runs.append({**runner.summary(run_id, rb), "for_checks": checks})
    return runs
