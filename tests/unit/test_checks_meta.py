"""Every check carries a unique id, a title, remediation text and a docstring
that says why the property matters: checks are data as much as code."""

from __future__ import annotations

import importlib

from hakit.catalog import checks
from hakit.model import PROPERTIES


def test_there_are_checks_for_every_property() -> None:
    assert {c.property for _, c in checks()} == set(PROPERTIES)


PREFIXES = {"API": "api-endpoint", "VIP": "api-endpoint", "ETCD": "etcd", "CP": "control-plane", "WL": "workloads",
            "MON": "monitoring", "HOST": "hosts"}


def test_a_checks_id_property_file_and_disruptive_name_agree() -> None:
    """One check, one vocabulary: its id's prefix names its property; a disruptive check has a
    -D id, lives in a test_failover_*.py file and names a disruptive.allowed entry."""
    from hakit.inventory import DISRUPTIVE_CHECKS
    for qualname, chk in checks():
        module = qualname.split(".")[0]
        prefix, _, number = chk.id.partition("-")
        assert PREFIXES.get(prefix) == chk.property, f"{chk.id}: prefix {prefix} but property {chk.property}"
        disruptive = number.startswith("D")
        assert disruptive == bool(chk.disruptive) == module.startswith("test_failover_"), (chk.id, module)
        assert chk.disruptive is None or chk.disruptive in DISRUPTIVE_CHECKS, chk.id


def test_ids_are_unique() -> None:
    ids = [c.id for _, c in checks()]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_each_check_has_title_remediation_and_docstring() -> None:
    for qualname, chk in checks():
        module, name = qualname.split(".")
        fn = getattr(importlib.import_module(f"hakit.checks.{module}"), name)
        assert chk.title and len(chk.remediation) > 30, chk.id
        assert (fn.__doc__ or "").strip(), f"{qualname} ({chk.id}) has no docstring"


def test_every_runbook_a_check_or_an_alert_names_is_shipped_and_checks_real_ids() -> None:
    """A failing check or a firing alert that points at a runbook nobody wrote strands the operator."""
    import yaml

    from hakit.prometheus import RULES_FILE
    from hakit.runbook import load_all
    books, ids = load_all(), {c.id for _, c in checks()}
    named = {c.runbook for _, c in checks() if c.runbook}
    assert named <= set(books), named - set(books)
    for name, rb in books.items():
        assert rb.checks and set(rb.checks) <= ids, (name, set(rb.checks) - ids)
    rules = [r for g in yaml.safe_load(RULES_FILE.read_text())["groups"] for r in g["rules"]]
    for rule in rules:
        url = rule["annotations"]["runbook_url"]
        assert url.startswith("hakit check ") or url.removeprefix("hakit runbook show ") in books, (rule["alert"], url)
