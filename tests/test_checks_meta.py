"""Every check carries a unique id, a title, remediation text and a docstring
that says why the property matters: checks are data as much as code."""

from __future__ import annotations

import importlib
from pathlib import Path

from hakit.model import Check

CHECKS = Path(__file__).resolve().parent.parent / "checks"


def all_checks() -> list[tuple[str, Check, object]]:
    found = []
    for path in sorted(CHECKS.glob("test_*.py")):
        module = importlib.import_module(f"checks.{path.stem}")
        for name, fn in vars(module).items():
            for mark in getattr(fn, "pytestmark", []):
                if mark.name == "hakit_check":
                    found.append((name, mark.args[0], fn))
    return found


def test_there_are_checks_for_every_property() -> None:
    from hakit.model import PROPERTIES
    assert {c.property for _, c, _ in all_checks()} == set(PROPERTIES)


def test_ids_are_unique() -> None:
    ids = [c.id for _, c, _ in all_checks()]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_each_check_has_title_remediation_and_docstring() -> None:
    for name, chk, fn in all_checks():
        assert chk.title and len(chk.remediation) > 30, chk.id
        assert (fn.__doc__ or "").strip(), f"{name} ({chk.id}) has no docstring"
        assert name.startswith("test_"), name
