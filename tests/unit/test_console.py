"""hakit's own terminal output (hakit.fixtures.console), without a lab: a check's line, its
colour only on a terminal, and the progress line a long wait prints. (A real audit's output
is tested on the lab in test_reports.py.)"""

from __future__ import annotations

import io
import threading

import pytest

from hakit import wait
from hakit.fixtures import console
from hakit.fixtures.console import Console
from hakit.model import Check, Outcome, Result, Severity


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def result(outcome: Outcome, message: str = "", about: list[tuple[str, str]] | None = None) -> Result:
    chk = Check("ETCD-002", "Every etcd endpoint is healthy", "etcd", Severity.CRITICAL, "fix it")
    return Result(chk, outcome, message, 1.25, [], "checks/test_etcd.py::test_every_endpoint_healthy",
                  about=about or [])


def test_a_check_is_one_line_of_status_id_title_seconds_and_a_failure_says_why_and_where() -> None:
    out = io.StringIO()
    shown = Console(out)
    shown._result(result(Outcome.PASS))
    shown._result(result(Outcome.FAIL, "cp3 does not answer", [("cp3", "etcd"), ("cp2", "etcd")]))
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["PASS", "test_every_endpoint_healthy", "Every", "etcd", "endpoint", "is", "healthy",
                                "1.2s"]
    assert lines[1].startswith("FAIL  ")
    assert lines[2] == "      why: cp3 does not answer" and lines[3] == "      on:  cp3/etcd, cp2/etcd"
    assert "\x1b[" not in out.getvalue(), "no colour where the output is not a terminal"


def test_the_line_names_the_check_id_and_its_parameter() -> None:
    shown = Console(io.StringIO())
    shown.ids = {"checks/test_workloads.py::test_spread[kube-system/coredns]": "WL-003"}
    assert shown.label("checks/test_workloads.py::test_spread[kube-system/coredns]") == "WL-003[kube-system/coredns]"


def test_colour_on_a_terminal_and_never_under_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = Terminal()
    Console(out)._result(result(Outcome.FAIL, "down"))
    assert out.getvalue().startswith("\x1b[31;1mFAIL")
    monkeypatch.setenv("NO_COLOR", "1")
    out = Terminal()
    Console(out)._result(result(Outcome.FAIL, "down"))
    assert "\x1b[" not in out.getvalue()


def test_a_long_wait_prints_what_the_running_check_waits_for(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    shown = Console(out)
    shown.pytest_runtest_logstart("checks/test_failover_api.py::test_vip", ("", None, ""))
    shown.running = "VIP-D01"
    monkeypatch.setattr(console, "PLAIN_PROGRESS_EVERY", 0.05)
    try:
        with pytest.raises(wait.WaitTimeout):
            wait.until(lambda: False, 0.3, "another host to take the VIP", interval=0.06)
        progress = out.getvalue()
        assert "… VIP-D01: waiting for another host to take the VIP (" in progress, progress
        before = out.getvalue()
        thread = threading.Thread(target=lambda: shown._waiting("a sample", 99.0, 100.0))
        thread.start()
        thread.join()
        assert out.getvalue() == before, "a Watch's thread prints nothing"
    finally:
        wait.watcher = None
