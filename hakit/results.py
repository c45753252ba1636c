"""What an audit found, and the exit code it means: built by the pytest plugin at the end of
its session, returned by `hakit.audit.run`, read by the CLI and a runbook's closing checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from hakit.errors import (
    EXIT_CHECK_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PRECONDITION,
    EXIT_UNREACHABLE,
    EXIT_UNVERIFIED,
    EXIT_USAGE,
)
from hakit.incidents import Incident
from hakit.model import Outcome, Result, Verdict


@dataclass
class Results:
    """What an audit found: each check's Result, the verdicts, and the serialised document
    (schema hakit.results/v1) that the report writers and `--json` take."""

    results: list[Result]
    verdicts: dict[str, Verdict]
    document: dict[str, Any]
    leftover_faults: list[str]
    incidents: list[Incident] = field(default_factory=list)
    pytest_code: int = 0
    refused: list[str] = field(default_factory=list)   # checks a missing precondition kept from running
    by_id: dict[str, Result] = field(init=False)

    def __post_init__(self) -> None:
        self.by_id = {r.check.id: r for r in self.results}

    @property
    def exit_code(self) -> int:
        """1 a check failed (or a fault is left over), 4 one could not run for a missing
        precondition (another run holds the cluster), 3 for another reason, 5 a property is
        unverified, 0 only when every selected property was verified and holds."""
        if self.pytest_code == pytest.ExitCode.INTERRUPTED:
            return EXIT_INTERRUPTED
        if self.pytest_code in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.NO_TESTS_COLLECTED):
            return EXIT_USAGE
        outcomes = {r.outcome for r in self.results}
        if outcomes & {Outcome.FAIL, Outcome.WARN} or self.leftover_faults:
            return EXIT_CHECK_FAILED
        if Outcome.ERROR in outcomes:
            errors = {r.check.id for r in self.results if r.outcome is Outcome.ERROR}
            return EXIT_PRECONDITION if errors <= set(self.refused) else EXIT_UNREACHABLE
        if Verdict.UNVERIFIED in self.verdicts.values() or not self.results:
            return EXIT_UNVERIFIED
        return EXIT_OK
