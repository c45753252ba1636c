"""Fixtures for hakit's own tests: one lab per test session, always removed.

The test lab lives beside any lab a user runs (its own state dir, namespace
prefix and subnet; HAKIT_TEST_LAB_DIR and HAKIT_TEST_PREFIX give a second session a lab
of its own, as scripts/test.sh does). HAKIT_TEST_KEEP_LAB=1 leaves it up after the run and
reuses a healthy one on the next, for fast iteration.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from hakit.lab.net import free_subnet
from hakit.lab.netns import Lab, down
from hakit.lab.paths import LabPaths
from hakit.lab.topology import LabSpec

TEST_LAB_ROOT = Path(os.environ.get("HAKIT_TEST_LAB_DIR", Path.home() / ".local/state/hakit/test-lab"))
TEST_PREFIX = os.environ.get("HAKIT_TEST_PREFIX", "hkt")


def _sigterm_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt("SIGTERM")


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    keep = os.environ.get("HAKIT_TEST_KEEP_LAB") == "1"
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)  # so teardown runs under SIGTERM too
    paths = LabPaths(TEST_LAB_ROOT)
    if keep:
        try:
            existing = Lab.load(paths.root)
            if all(s.healthy for s in existing.status()):
                yield existing
                return
        except Exception:  # noqa: BLE001 - not reusable: brought up anew below
            pass
    down(paths, LabSpec(prefix=TEST_PREFIX), progress=lambda _: None)
    lab = Lab(LabSpec(subnet=free_subnet(), prefix=TEST_PREFIX), paths)
    try:
        lab.up(progress=lambda msg: print(f"[lab] {msg}"))
        yield lab
    finally:
        if not keep:
            down(paths, progress=lambda _: None)


@pytest.fixture(scope="session")
def api(lab: Lab):  # type: ignore[no-untyped-def]
    """A Kubernetes client for the lab, through the VIP (as admin.conf points)."""
    return lab.api()


@pytest.fixture(scope="session")
def control(lab: Lab):  # type: ignore[no-untyped-def]
    """The fault control of the lab, reached over SSH through its inventory like any cluster."""
    from hakit.cluster import Cluster
    from hakit.inventory import load
    return Cluster(load(lab.paths.inventory))


@pytest.fixture(autouse=True)
def kernel_state_steady(request: pytest.FixtureRequest) -> Iterator[None]:
    """No swap switched on by another session while a test runs (breaking.machine_state):
    every lab's hosts share this kernel, and HOST-001 and the kubelets read it. A
    `machine_wide` test, which changes it, takes the lock exclusively itself."""
    if request.node.get_closest_marker("machine_wide"):
        yield
        return
    from breaking import machine_state
    with machine_state(change=False):
        yield


@pytest.fixture
def settled(lab: Lab) -> Iterator[None]:
    """A break test starts from, and leaves, a lab whose every component is healthy."""
    from breaking import lab_settled
    lab_settled(lab)
    yield
    lab_settled(lab)


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's runbook journals in a directory of its own."""
    monkeypatch.setenv("HAKIT_RUNBOOK_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that change kernel state every lab shares go last: by then most of the other lane
    of make test, whose tests such a test must wait out, is done."""
    items.sort(key=lambda item: item.get_closest_marker("machine_wide") is not None)
