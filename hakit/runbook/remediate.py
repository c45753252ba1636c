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
from hakit.incidents import Incident
from hakit.inventory import Inventory
from hakit.model import Outcome, Result
from hakit.runbook import Runbook, load_all
from hakit.runbook import run as runner


def plan(results: list[Result], found: list[Incident], allowed: list[str],
         books: dict[str, Runbook]) -> list[tuple[str, dict[str, str], list[str]]]:
    """(runbook, parameters, the failing checks it is for) for the runbooks named in allowed:
    first the repairs of each incident (parameters filled from the evidence: which host,
    which component), then, for failing checks no incident repairs, their own runbook
    where it needs no parameter."""
    out: list[tuple[str, dict[str, str], list[str]]] = []
    covered: set[str] = set()
    for incident in found:
        for name, params in incident.runs:
            if name in allowed and name in books and (name, params) not in [(n, p) for n, p, _ in out]:
                out.append((name, params, [r.check.id for r in incident.findings]))
                covered |= {r.check.id for r in incident.findings}
    for r in results:
        name = r.check.runbook
        if r.outcome in (Outcome.FAIL, Outcome.WARN) and name in allowed and name in books \
                and r.check.id not in covered:
            entry = next((e for e in out if e[0] == name and not e[1]), None)
            if entry is None:
                out.append(entry := (name, {}, []))
            entry[2].append(r.check.id)
    return out


def remediate(results: list[Result], found: list[Incident], inv: Inventory, allowed: list[str],
              out: runner.Print) -> list[dict[str, Any]]:
    """Run what the plan says; a run that fails does not stop the next."""
    books = load_all()
    unknown = sorted(set(allowed) - set(books))
    if unknown:   # checked before the audit too; here for callers that skip that
        raise HakitError(f"--remediate: no runbook {', '.join(unknown)} (`hakit runbook list`)")
    runs = []
    for name, given, checks in plan(results, found, allowed, books):
        rb = books[name]
        needs = [p.name for p in rb.params if p.default is None and p.name not in given]
        if needs:
            runs.append({"runbook": name, "title": rb.title, "for_checks": checks, "status": "not run", "checks": {},
                         "error": f"needs {', '.join(needs)}: run it by hand, "
                                  f"hakit runbook run {name} {' '.join(f'{p}=…' for p in needs)}", "steps": []})
            continue
        run_id = runner.new_run_id(rb)
        shown = " ".join(f"{k}={v}" for k, v in given.items())
        out(f"\nremediating {', '.join(checks)} with runbook {name} {shown} (run {run_id})")
        try:
            runner.start(rb, inv, rb.resolve(given), yes=True, confirm=lambda _: False, out=out, run_id=run_id)
        except HakitError as e:
            out(f"{name}: {e}")
        runs.append({**runner.summary(run_id, rb), "for_checks": checks})
    return runs
