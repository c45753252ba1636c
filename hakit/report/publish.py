"""Where an audit's results go, written once, after everything that adds to them (a
remediation's runs) is in: the JSON document, the HTML page, the node_exporter textfile and
the Pushgateway. pytest's own JUnit XML and pytest-html page are written by pytest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hakit.errors import HakitError
from hakit.report import metrics, write_html, write_json


def publish(doc: dict[str, Any], *, json: Path | None = None, html: Path | None = None,
            textfile: Path | None = None, pushgateway: str | None = None) -> str | None:
    """Write the document to each destination given; returns why the push failed, if it did
    (the audit's own results stand: the caller says so)."""
    if json:
        write_json(doc, json)
    if html:
        write_html(doc, html)
    if textfile:
        metrics.write_textfile(doc, textfile)
    if pushgateway:
        try:
            metrics.push(doc, pushgateway)
        except HakitError as e:
            return str(e)
    return None
