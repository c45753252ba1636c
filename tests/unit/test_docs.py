"""The reference in docs/ that is generated from the code is current."""

from __future__ import annotations

from pathlib import Path

from hakit import catalog

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_checks_reference_is_current() -> None:
    assert (DOCS / "checks.md").read_text() == catalog.markdown(), (
        "docs/checks.md is out of date: hakit check --list --markdown > docs/checks.md")


def test_every_check_is_in_the_reference() -> None:
    text = (DOCS / "checks.md").read_text()
    assert all(f"### {c.id}: " in text for _, c in catalog.checks())
