"""`hakit check`, `hakit audit`, `hakit report` (filled in by the core issue)."""

from __future__ import annotations

import argparse


def add_check_commands(sub: argparse._SubParsersAction) -> None:
    pass
