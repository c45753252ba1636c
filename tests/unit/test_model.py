"""The verdict model: outcomes to verdicts, accepted skips, exit codes, check records."""

from __future__ import annotations

import pytest

from hakit.model import Check, Measurement, Outcome, Result, Severity, Verdict, verdict
from hakit.table import table


def _result(outcome: Outcome, severity: Severity = Severity.CRITICAL) -> Result:
    return Result(Check("X-1", "t", "etcd", severity, "fix"), outcome, "", 0.0, [Measurement("m", 1)], "n")


@pytest.mark.parametrize(("outcomes", "expected"), [
    ([Outcome.PASS, Outcome.PASS], Verdict.PASS),
    ([Outcome.PASS, Outcome.WARN], Verdict.DEGRADED),
    ([Outcome.WARN, Outcome.FAIL], Verdict.FAIL),
    ([Outcome.PASS, Outcome.ERROR], Verdict.UNVERIFIED),
    ([Outcome.PASS, Outcome.SKIP], Verdict.UNVERIFIED),     # one passed, the rest not looked at: no PASS
    ([Outcome.WARN, Outcome.SKIP], Verdict.UNVERIFIED),
    ([Outcome.FAIL, Outcome.SKIP], Verdict.FAIL),
    ([Outcome.SKIP], Verdict.UNVERIFIED),
])
def test_property_verdict(outcomes: list[Outcome], expected: Verdict) -> None:
    assert verdict([_result(o) for o in outcomes]) is expected


def test_an_accepted_skip_does_not_leave_the_property_unverified() -> None:
    results = [_result(Outcome.PASS), _result(Outcome.SKIP)]
    assert verdict(results, accepted_skips={"X-1"}) is Verdict.PASS
    assert verdict(results, accepted_skips={"OTHER-1"}) is Verdict.UNVERIFIED


def test_a_check_kept_from_running_by_another_runs_lock_exits_4_not_3() -> None:
    from hakit.results import Results
    errored = [_result(Outcome.ERROR)]
    assert Results(errored, {}, {}, [], refused=["X-1"]).exit_code == 4   # a precondition: another run holds it
    assert Results(errored, {}, {}, []).exit_code == 3                    # could not run: unreachable


def test_check_record_rejects_unknown_property() -> None:
    with pytest.raises(ValueError, match="unknown property"):
        Check("X-2", "t", "nonsense", Severity.CRITICAL, "fix")


def test_table_aligns_columns() -> None:
    assert table(("A", "BB"), [("xyz", "1")]) == "A    BB\nxyz  1"


def test_an_audits_options_are_declared_once_for_the_cli_and_the_plugin() -> None:
    from hakit.cli import build_parser
    from hakit.selection import Selection
    args, _ = build_parser().parse_known_args(["check", "--property", "etcd", "--check", "API-001", "--disruptive",
                                               "--accept-skip", "ETCD-008", "--metrics", "m.prom"])
    assert Selection.from_args(args).argv() == [
        "--hakit-property=etcd", "--hakit-check=API-001", "--hakit-accept-skip=ETCD-008", "--hakit-disruptive",
        "--hakit-metrics=m.prom"]
