"""The waiting vocabulary: until a condition is true, and whether it holds for a while."""

from __future__ import annotations

import itertools
import time

import pytest

from hakit import wait


def test_holds_is_true_only_when_the_condition_stays_true() -> None:
    assert wait.holds(lambda: True, 0.2, interval=0.05)
    answers = itertools.chain([True, True], itertools.repeat(False))
    began = time.monotonic()
    assert not wait.holds(lambda: next(answers), 5, interval=0.05)
    assert time.monotonic() - began < 1, "it answers at the first false, not at the end"


def test_until_returns_the_value_or_says_what_and_why() -> None:
    values = iter([0, 0, 7])
    assert wait.until(lambda: next(values), 5, "seven", interval=0.01) == 7
    with pytest.raises(wait.WaitTimeout, match=r"timed out after 0s waiting for nothing: still 0"):
        wait.until(lambda: 0, 0.05, "nothing", interval=0.01, why=lambda: "still 0")
