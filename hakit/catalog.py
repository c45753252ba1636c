"""The catalogue of checks: every `@check` in the suites under checks/, found by
its marker rather than listed by hand."""

from __future__ import annotations

import importlib
from pathlib import Path

import hakit.checks
from hakit.model import Check

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
