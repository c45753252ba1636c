"""Bad input gets one line and a distinct exit code, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def hakit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hakit.cli", *args], capture_output=True, text=True, timeout=120,
                          env=env)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_missing_inventory_is_usage_error(tmp_path: Path) -> None:
    proc = hakit("check", "--inventory", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 2
    assert "no such file" in one_line_error(proc)


def test_invalid_inventory_names_every_field(tmp_path: Path) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text("cluster: {kubeconfig: /nonexistent}\napi: {port: high}\nslo: {vip_failover_secs: 3}\n")
    proc = hakit("check", "--inventory", str(inv))
    assert proc.returncode == 2
    line = one_line_error(proc)
    for expected in ("cluster.kubeconfig: file /nonexistent does not exist", "api.vip: missing",
                     "api.port: got str", "slo.vip_failover_secs: unknown", "control_plane.hosts: missing"):
        assert expected in line


def test_unreachable_cluster_exits_3(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("""apiVersion: v1
kind: Config
current-context: c
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: not-a-real-token}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
""")
    inv = tmp_path / "inv.yaml"
    inv.write_text(f"cluster: {{kubeconfig: {kubeconfig}}}\napi: {{vip: 127.0.0.1, port: 1}}\n"
                   "control_plane: {hosts: [{name: a, address: 127.0.0.2}]}\napi_server_port: 1\n")
    inv.write_text(inv.read_text().replace("api_server_port: 1\n", ""))
    proc = hakit("check", "--inventory", str(inv))
    assert proc.returncode == 3, proc.stderr
    assert "no apiserver answers" in one_line_error(proc)
    assert "not-a-real-token" not in proc.stderr + proc.stdout


def test_unknown_flag_is_usage_error() -> None:
    proc = hakit("check", "--no-such-flag")
    assert proc.returncode == 2
    assert "unrecognized arguments" in one_line_error(proc)


def test_report_rejects_a_file_that_is_not_results(tmp_path: Path) -> None:
    bad = tmp_path / "results.json"
    bad.write_text('{"hello": 1}')
    proc = hakit("report", str(bad))
    assert proc.returncode == 2
    assert "not a hakit.results/v1 document" in one_line_error(proc)
    assert not (tmp_path / "audit.html").exists()


def test_report_names_what_a_truncated_results_file_lacks(tmp_path: Path) -> None:
    bad = tmp_path / "results.json"
    bad.write_text('{"schema": "hakit.results/v1", "verdicts": {}, "started": 0}')
    proc = hakit("report", str(bad))
    assert proc.returncode == 2
    assert "results document lacks a field the report needs" in one_line_error(proc)
    assert not (tmp_path / "audit.html").exists()


@pytest.mark.parametrize("args", [["--help"], ["lab", "--help"], ["check", "--help"]])
def test_help_teaches(args: list[str]) -> None:
    proc = hakit(*args)
    assert proc.returncode == 0 and "usage:" in proc.stdout
