"""Property-based fuzzing of everything hakit reads from files a user or a crash wrote:
the inventory, the fault journal and the results file. Random and adversarial inputs
give exit 2 with one line, or a valid object; never a traceback, never a command run.
HAKIT_FUZZ_EXAMPLES sets the number of inputs per test (default 200 in CI)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hakit.cli import main
from hakit.faults.journal import Journal, JournalError

EXAMPLES = int(os.environ.get("HAKIT_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))

HOSTILE = st.sampled_from(["10.0.0.11;touch /tmp/hakit-fuzz-marker", "$(touch /tmp/hakit-fuzz-marker)", "{host}",
                           "{initial_cluster}", "a\nnotify_master /bin/sh", "'", '"', "\\", "../../..", "", "-rf",
                           "99999", "-1", "10.0.0.300", "::1", "http://x:99999", "https://[::1]:2379", "~",
                           "in-cluster"])
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=True),
                   st.text(max_size=30), HOSTILE)
VALUE = st.recursive(SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12) | HOSTILE, inner, max_size=4)), max_leaves=20)
SECTIONS = ["version", "cluster", "api", "control_plane", "access", "etcd", "monitoring", "slo", "thresholds",
            "workloads", "disruptive"]
KEYS = ["kubeconfig", "name", "vip", "port", "hosts", "address", "user", "key", "endpoints", "paths", "etcd_data",
        "prometheus", "allowed", "journal", "control", "critical", "namespace", "ca", "cert"]
INVENTORY = st.dictionaries(st.sampled_from(SECTIONS) | st.text(max_size=8),
                            st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), VALUE, max_size=5) | VALUE,
                            max_size=8)
MARKER = Path("/tmp/hakit-fuzz-marker")


def _one_line_or_ok(code: int, err: str, ok_codes: tuple[int, ...] = (0,)) -> None:
    assert code in (*ok_codes, 2), (code, err)
    assert "Traceback" not in err
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("hakit: "), err
    assert not MARKER.exists()


@FUZZ
@given(doc=INVENTORY)
def test_inventory_validate_never_crashes(tmp_path_factory: pytest.TempPathFactory, doc: dict,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path_factory.mktemp("inv") / "inv.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    code = main(["inventory", "validate", str(path)])
    _one_line_or_ok(code, capsys.readouterr().err)


@FUZZ
@given(text=st.text(max_size=400))
def test_inventory_of_any_text_never_crashes(tmp_path_factory: pytest.TempPathFactory, text: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path_factory.mktemp("inv") / "inv.yaml"
    path.write_text(text)
    _one_line_or_ok(main(["inventory", "validate", str(path)]), capsys.readouterr().err)


RECORD = st.fixed_dictionaries({"event": st.sampled_from(["inject", "restore"]) | st.text(max_size=6),
                                "id": SCALAR, "fault": SCALAR, "injected_at": SCALAR,
                                "undo": st.fixed_dictionaries({"kind": st.sampled_from(
                                    ["start", "heal", "undrain", "delete_namespace", "__init__", "run"]) | SCALAR},
                                    optional={"host": SCALAR, "component": SCALAR, "namespace": SCALAR,
                                              "deployments": VALUE}) | VALUE,
                                "owner": VALUE, "cluster": VALUE})


@FUZZ
@given(lines=st.lists(RECORD.map(json.dumps) | st.text(max_size=60), max_size=6), torn=st.booleans())
def test_journal_reader_returns_entries_or_one_error(tmp_path_factory: pytest.TempPathFactory, lines: list[str],
                                                     torn: bool) -> None:
    path = tmp_path_factory.mktemp("j") / "j.jsonl"
    path.write_text("\n".join(lines) + ("" if torn else "\n"))
    try:
        entries = Journal(path).pending()
    except JournalError as e:
        assert "\n" not in str(e)
        return
    for e in entries:   # whatever was accepted is one of the closed set, with valid arguments
        assert e.undo["kind"] in ("start", "heal", "wait_answering", "undrain", "delete_namespace", "expire_silences")


@FUZZ
@given(doc=st.dictionaries(st.sampled_from(["schema", "results", "verdicts", "cluster", "started", "summary",
                                            "finished", "duration", "inventory"]) | st.text(max_size=6),
                           st.just("hakit.results/v1") | VALUE, max_size=9))
def test_report_from_any_results_file_never_crashes(tmp_path_factory: pytest.TempPathFactory, doc: dict,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path_factory.mktemp("r") / "results.json"
    path.write_text(json.dumps(doc))
    _one_line_or_ok(main(["report", str(path)]), capsys.readouterr().err)
