"""The catalogue of checks: every `@check` in the suites under checks/, found by
its marker rather than listed by hand."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from hakit.model import Check

CHECKS_DIR = Path(__file__).resolve().parent.parent / "checks"


def checks() -> list[tuple[str, Check]]:
    """(function name, record) for each check, in file order."""
    root = str(CHECKS_DIR.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    found = []
    for path in sorted(CHECKS_DIR.glob("test_*.py")):
        module = importlib.import_module(f"checks.{path.stem}")
        for name, fn in vars(module).items():
            for mark in getattr(fn, "pytestmark", []):
                if mark.name == "hakit_check":
                    found.append((f"{path.stem}.{name}", mark.args[0]))
    return found
