"""Running a runbook: one confirmed step at a time, every step journaled, resumable.

The journal is a JSON-lines file per run under the state directory
($HAKIT_RUNBOOK_DIR, default ~/.local/state/hakit/runbooks): the run's header
(runbook, fingerprint, parameters), then each step's start and end with its
output, the values it kept and timestamps, then the closing checks. `resume`
replays it: finished steps are not repeated, and a runbook whose procedure has
changed since is refused rather than resumed silently.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hakit.errors import EXIT_CHECK_FAILED, ConfigError, HakitError, PreconditionError
from hakit.inventory import Inventory
from hakit.runbook import Context, Runbook, Step

Confirm = Callable[[str], bool]
Print = Callable[[str], None]


class StepFailed(HakitError):
    """A step (or the closing checks) failed: the property is not repaired."""

    exit_code = EXIT_CHECK_FAILED


def state_dir() -> Path:
    return Path(os.environ.get("HAKIT_RUNBOOK_DIR", Path.home() / ".local/state/hakit/runbooks"))


class RunJournal:
    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, event: str, **fields: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps({"event": event, "at": time.time(), **fields}, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())   # a SIGKILL may follow: resume must know this step's fate

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            raise ConfigError(f"no run journal at {self.path}")
        out = []
        for line in self.path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue   # a line torn by a crash: its step is treated as not done
        return out


def render(rb: Runbook, ctx: Context, markdown: bool = False) -> str:
    """The procedure with every command resolved: what `show` and `--dry-run` print."""
    lines = [f"# {rb.name}: {rb.title}", "", rb.summary, ""] if markdown else [f"{rb.name}: {rb.title}", rb.summary, ""]
    if ctx.params:
        lines += [("Parameters: " if not markdown else "**Parameters:** ") +
                  ", ".join(f"{k}={v}" for k, v in ctx.params.items()), ""]
    for i, step in enumerate(rb.steps, 1):
        kind = "changes" if step.changes else "probe"
        try:
            detail = step.show(ctx)
        except (HakitError, KeyError) as e:   # a value an earlier step finds at run time
            detail = f"(resolved when run: {e})"
        if markdown:
            lines += [f"{i}. **{step.text}** _({kind})_", "", "   ```sh", f"   {detail}", "   ```"]
            if step.require_text:
                lines += [f"   Only if: {step.require_text}"]
            if step.undo_text:
                lines += [f"   Undo: {step.undo_text}"]
            lines.append("")
        else:
            lines += [f"[{i}/{len(rb.steps)}] {step.text} ({kind})", f"    $ {detail}"]
            if step.require_text:
                lines.append(f"    only if: {step.require_text}")
            if step.undo_text:
                lines.append(f"    undo: {step.undo_text}")
    final = ", ".join(rb.checks) or "none"
    lines += ["", f"{'**Then**' if markdown else 'Then'}: the checks {final} must pass."]
    return "\n".join(lines)


def new_run_id(rb: Runbook) -> str:
    return f"{rb.name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:4]}"


def start(rb: Runbook, inv: Inventory, params: dict[str, str], yes: bool, confirm: Confirm, out: Print,
          run_id: str | None = None) -> str:
    run_id = run_id or new_run_id(rb)
    journal = RunJournal(state_dir() / f"{run_id}.jsonl")
    journal.write("start", run=run_id, runbook=rb.name, fingerprint=rb.fingerprint, params=params,
                  inventory=str(inv.source))
    out(f"run {run_id} (journal {journal.path}); `hakit runbook resume {run_id}` continues it if interrupted")
    execute(rb, Context(inv, params), journal, set(), yes, confirm, out)
    return run_id


def resume(run_id: str, books: dict[str, Runbook], inv_loader: Callable[[str, Runbook], Inventory], yes: bool,
           confirm: Confirm, out: Print) -> None:
    journal = RunJournal(state_dir() / f"{run_id}.jsonl")
    records = journal.records()
    head = records[0]
    if any(r["event"] == "end" and r["status"] == "succeeded" for r in records):
        raise PreconditionError(f"run {run_id} already succeeded; nothing to resume")
    rb = books.get(head["runbook"])
    if rb is None or rb.fingerprint != head["fingerprint"]:
        raise PreconditionError(f"run {run_id}: runbook {head['runbook']} has changed since the run began "
                                "(fingerprint differs); start a new run instead of resuming this one")
    done = {r["step"] for r in records if r["event"] == "step" and r["status"] == "done"}
    state = next((r["state"] for r in reversed(records) if r["event"] == "step" and "state" in r), {})
    out(f"resuming {run_id}: {len(done)} of {len(rb.steps)} steps already done")
    execute(rb, Context(inv_loader(head["inventory"], rb), head["params"], dict(state)), journal, done, yes,
            confirm, out)


def execute(rb: Runbook, ctx: Context, journal: RunJournal, done: set[str], yes: bool, confirm: Confirm,
            out: Print) -> None:
    for i, step in enumerate(rb.steps, 1):
        head = f"[{i}/{len(rb.steps)}] {step.text}"
        if step.id in done:
            out(f"{head}: already done")
            continue
        out(f"{head}\n    $ {step.show(ctx)}")
        if step.require:
            try:
                found = step.require(ctx)
                if found:
                    out(f"    safe: {found}")
            except Exception as e:  # noqa: BLE001 - whatever says no, the step must not act: one line
                fail(rb, step, i, ctx, journal, f"not safe to run now: {said(e)}", yes, confirm, out, acted=False)
        if step.changes and not yes and not confirm("    run this step? [y/N] "):
            journal.write("step", step=step.id, status="declined")
            journal.write("end", status="aborted")
            raise PreconditionError(f"stopped before step {i} ({step.id}): not confirmed. Nothing of it was "
                                    f"done; `hakit runbook resume {journal.path.stem}` continues from here")
        journal.write("step", step=step.id, status="started")
        try:
            output = step.do(ctx)
            if step.verify:
                step.verify(ctx)
        except Exception as e:  # noqa: BLE001 - a step that crashes has failed: journal it, say it in one line
            fail(rb, step, i, ctx, journal, said(e), yes, confirm, out)
        journal.write("step", step=step.id, status="done", output=output, state=ctx.state)
        if output:
            out("    " + output.strip().replace("\n", "\n    "))
    verify_with_checks(rb, ctx, journal, out)


def said(e: Exception) -> str:
    """hakit's own errors are written for the operator; anything else gets its type named."""
    return str(e) if isinstance(e, HakitError) else f"{type(e).__name__}: {e}"


def fail(rb: Runbook, step: Step, i: int, ctx: Context, journal: RunJournal, why: str, yes: bool,
         confirm: Confirm, out: Print, acted: bool = True) -> None:
    journal.write("step", step=step.id, status="failed", error=why, state=ctx.state)
    done = ", ".join(s.id for s in rb.steps[:i - 1]) or "none"
    where = f"step {i} ({step.id}) failed: {why}. Done before it: {done}."
    if not acted:
        where += " It did nothing."
    elif step.undo and not yes and confirm(f"    undo this step ({step.undo_text})? [y/N] "):
        step.undo(ctx)
        journal.write("step", step=step.id, status="undone")
        where += " Its undo ran."
    elif step.undo:
        where += f" Its undo, not run: {step.undo_text}."
    journal.write("end", status="failed", error=why)
    raise StepFailed(f"{where} Journal: {journal.path}")


def verify_with_checks(rb: Runbook, ctx: Context, journal: RunJournal, out: Print) -> None:
    """The run succeeded only if the checks of the property it repairs pass now."""
    if not rb.checks:
        journal.write("end", status="succeeded")
        return
    skipped = rb.checks_skipped(ctx) if rb.checks_skipped else None
    if skipped:
        out(f"not verifying {', '.join(rb.checks)}: {skipped}")
        journal.write("end", status="succeeded", checks_skipped=skipped)
        return
    out(f"verifying: {', '.join(rb.checks)}")
    from hakit import audit  # not at the top: it brings pytest in, which only this step needs
    from hakit.selection import Selection
    found = audit.run(ctx.inventory, Selection(check=tuple(rb.checks)), quiet=True).results
    outcomes = {r.check.id: (r.outcome.value, r.message) for r in found}
    journal.write("checks", outcomes=outcomes)
    bad = {c: o for c, o in outcomes.items() if o[0] != "pass"} or (
        {c: ("missing", "did not run") for c in rb.checks if c not in outcomes})
    for c, (outcome, message) in sorted(outcomes.items()):
        out(f"    {outcome.upper():5} {c} {message}")
    if bad:
        journal.write("end", status="failed", error=f"checks not passing: {', '.join(bad)}")
        raise StepFailed(f"every step ran, but {', '.join(f'{c} ({o[0]}: {o[1]})' for c, o in bad.items())}: "
                         f"the property is not repaired. Journal: {journal.path}")
    journal.write("end", status="succeeded")
    out(f"{rb.name}: done, and {', '.join(rb.checks)} pass")


def summary(run_id: str, rb: Runbook) -> dict[str, Any]:
    """A run as its journal tells it: each step's last status and output, the closing
    checks, how it ended. What an audit report shows of a runbook it ran."""
    records = RunJournal(state_dir() / f"{run_id}.jsonl").records()
    last: dict[str, dict[str, Any]] = {}
    for r in records:
        if r["event"] == "step":
            last[r["step"]] = {**last.get(r["step"], {}), **r}
    end = next((r for r in reversed(records) if r["event"] == "end"), {"status": "interrupted"})
    checks = next((r["outcomes"] for r in reversed(records) if r["event"] == "checks"), {})
    return {"run": run_id, "runbook": rb.name, "title": rb.title, "params": records[0].get("params", {}),
            "status": end["status"], "error": end.get("error", ""), "journal": str(state_dir() / f"{run_id}.jsonl"),
            "started": records[0]["at"], "finished": records[-1]["at"],
            "steps": [{"id": s.id, "text": s.text, "status": last.get(s.id, {}).get("status", "not run"),
                       "output": last.get(s.id, {}).get("output") or "", "error": last.get(s.id, {}).get("error", "")}
                      for s in rb.steps],
            "checks": {c: {"outcome": o, "message": m} for c, (o, m) in checks.items()}}
