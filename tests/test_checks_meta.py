"""Every check carries a unique id, a title, remediation text and a docstring
that says why the property matters: checks are data as much as code."""

from __future__ import annotations

import importlib

from hakit.catalog import checks
from hakit.model import PROPERTIES


def test_there_are_checks_for_every_property() -> None:
    assert {c.property for _, c in checks()} == set(PROPERTIES)


def test_ids_are_unique() -> None:
    ids = [c.id for _, c in checks()]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_each_check_has_title_remediation_and_docstring() -> None:
    for qualname, chk in checks():
        module, name = qualname.split(".")
        fn = getattr(importlib.import_module(f"checks.{module}"), name)
        assert chk.title and len(chk.remediation) > 30, chk.id
        assert (fn.__doc__ or "").strip(), f"{qualname} ({chk.id}) has no docstring"
