"""The catalogue of checks: every `@check` in the suites under checks/, found by
its marker rather than listed by hand."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import hakit.checks
from hakit.model import PROPERTIES, Check

CHECKS_DIR = Path(hakit.checks.__file__).resolve().parent   # checks/ in the repository, hakit/checks installed


def checks() -> list[tuple[str, Check]]:
    """(function name, record) for each check, in file order."""
    found = []
    for path in sorted(CHECKS_DIR.glob("test_*.py")):
        module = importlib.import_module(f"hakit.checks.{path.stem}")
        for name, fn in vars(module).items():
            for mark in getattr(fn, "pytestmark", []):
                if mark.name == "hakit_check":
                    found.append((f"{path.stem}.{name}", mark.args[0]))
    return found


def markdown() -> str:
    """docs/checks.md: every check's record and why it matters (its docstring), by property.
    Generated (`hakit check --list --markdown`) so the reference cannot drift from the code."""
    lines = ["# The checks", "",
             "Generated from the check records by `hakit check --list --markdown > docs/checks.md`;",
             "tests/unit/test_docs.py fails when it is out of date. Each check's remediation is what the",
             "audit report prints when it fails; its runbook (if any) is the procedure that repairs it.", ""]
    found = checks()
    for prop, title in PROPERTIES.items():
        lines += [f"## `{prop}`: {title}", ""]
        for qualname, c in (f for f in found if f[1].property == prop):
            stem, name = qualname.split(".", 1)
            doc = inspect.getdoc(getattr(importlib.import_module(f"hakit.checks.{stem}"), name)) or ""
            kind = f"disruptive (`{c.disruptive}`)" if c.disruptive else "read-only"
            lines += [f"### {c.id}: {c.title}", "",
                      f"{c.severity.value}, {kind}; `checks/{stem}.py::{name}`", ""]
            lines += [doc, ""] if doc else []
            lines += [f"**Remediation.** {c.remediation}", ""]
            lines += [f"**Runbook.** `hakit runbook show {c.runbook}`", ""] if c.runbook else []
    return "\n".join(lines).rstrip() + "\n"
