"""hakit as an SRE installs it: the wheel into a fresh virtualenv, used from a
directory that is not the source tree. The check suites, runbooks, plugin,
templates and rules all come from the wheel."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from hakit.lab.netns import Lab

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.lab, pytest.mark.slow]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The venv's bin directory, hakit installed there from its wheel."""
    where = tmp_path_factory.mktemp("wheel")
    source = where / "source"   # a copy: building writes build/ and *.egg-info into the tree it builds
    def ignored(directory: str, names: list[str]) -> set[str]:   # hakit/lab/build is data, /build is not
        top = {".git", ".venv", "build", "reports"} if Path(directory) == REPO else set()
        return {n for n in names if n in top or n == "__pycache__" or n.endswith(".egg-info")}
    shutil.copytree(REPO, source, ignore=ignored)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(where / "dist"), str(source)],
                   check=True, capture_output=True, timeout=600)
    [wheel] = (where / "dist").glob("hakit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in ("hakit/lab/build/versions.env", "hakit/checks/test_etcd.py", "hakit/runbooks/etcd_backup.py",
                    "hakit/fixtures/plugin.py",
                    "hakit/templates/keepalived.conf.j2", "hakit/rules/ha-alerts.yaml",
                    "hakit/report/templates/audit.html.j2"):
        assert shipped in names, f"{shipped} is not in {wheel.name}"
    assert not [n for n in names if n.startswith(("fixtures/", "checks/", "runbooks/"))], \
        "top-level packages would collide with others of the same name in site-packages"
    subprocess.run([sys.executable, "-m", "venv", str(where / "venv")], check=True, timeout=300)
    subprocess.run([str(where / "venv/bin/pip"), "install", "-q", str(wheel)], check=True, capture_output=True,
                   timeout=900)
    return where / "venv/bin"


def test_the_installed_wheel_lists_checks_and_runbooks_and_renders_a_report(installed: Path, tmp_path: Path) -> None:
    def hakit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(installed / "hakit"), *args], capture_output=True, text=True, cwd=tmp_path,
                              timeout=300)
    listed = hakit("check", "--list")
    assert listed.returncode == 0 and "ETCD-001" in listed.stdout and "VIP-D01" in listed.stdout, listed.stderr
    books = hakit("runbook", "list")
    assert books.returncode == 0 and "etcd-restore-snapshot" in books.stdout, books.stderr
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"schema": "hakit.results/v1", "kit_version": "0", "cluster": "c", "inventory": "i",
                                   "runner": "r", "started": 0, "finished": 1, "duration": 1, "verdicts": {},
                                   "summary": {}, "results": []}))
    report = hakit("report", str(results))
    assert report.returncode == 0 and (tmp_path / "audit.html").exists(), report.stderr


def test_an_audit_and_plain_pytest_run_from_the_wheel(installed: Path, lab: Lab, tmp_path: Path) -> None:
    audit = subprocess.run([str(installed / "hakit"), "audit", "--inventory", str(lab.paths.inventory),
                            "--property", "etcd", "--reports", str(tmp_path / "reports")],
                           capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert audit.returncode == 0, audit.stdout[-3000:] + audit.stderr
    assert (tmp_path / "reports/latest/audit.html").exists()
    plain = subprocess.run([str(installed / "pytest"), "--pyargs", "hakit.checks", "--inventory",
                            str(lab.paths.inventory), "--hakit-property", "etcd", "-q", "-p", "no:cacheprovider"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert plain.returncode == 0 and " passed" in plain.stdout, plain.stdout[-3000:]
