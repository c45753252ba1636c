"""Inventories against the lab: discovery from a kubeconfig, and hosts that
cannot be reached or refuse the credentials."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hakit.inventory import load
from hakit.lab.netns import Lab

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("settled")]


def hakit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hakit.cli", *args], capture_output=True, text=True, timeout=300)


def test_discover_finds_the_control_plane_and_etcd(lab: Lab, tmp_path: Path) -> None:
    out = tmp_path / "inv.yaml"
    proc = hakit("inventory", "discover", "--kubeconfig", str(lab.paths.admin_kubeconfig), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    inv = load(out)
    assert inv.vip == lab.spec.vip and inv.port == 8443
    assert [(h.name, h.address) for h in inv.control_plane] == [(h.name, h.address)
                                                                for h in lab.spec.control_plane_hosts]
    assert sorted(inv.etcd.endpoints) == [f"https://{h.address}:2379" for h in lab.spec.control_plane_hosts]
    again = hakit("inventory", "discover", "--kubeconfig", str(lab.paths.admin_kubeconfig), "-o", str(out))
    assert again.returncode == 2 and "exists; pass --force" in again.stderr


def test_discovered_inventory_audits_what_it_can_and_skips_the_rest(lab: Lab, tmp_path: Path) -> None:
    out, results = tmp_path / "inv.yaml", tmp_path / "results.json"
    hakit("inventory", "discover", "--kubeconfig", str(lab.paths.admin_kubeconfig), "-o", str(out))
    proc = hakit("check", "--inventory", str(out), "--json", str(results))
    outcomes = {r["check"]["id"]: r["outcome"] for r in json.loads(results.read_text())["results"]}
    assert outcomes["ETCD-002"] == "pass" and outcomes["API-001"] == "pass"
    assert outcomes["HOST-003"] == "skip" and outcomes["MON-001"] == "skip"
    assert proc.returncode == 5, proc.stdout[-1500:]   # what was skipped is unverified, never a pass
    assert json.loads(results.read_text())["verdicts"]["monitoring"] == "unverified"


def test_wrong_ssh_key_is_an_unreachable_target(lab: Lab, tmp_path: Path) -> None:
    """Host checks cannot run (ERROR, not FAIL), the run exits 3 and says why in one line per check."""
    wrong = tmp_path / "id_wrong"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)], check=True)
    config = tmp_path / "ssh_config"  # the lab's, host keys accepted, but the wrong identity
    config.write_text(lab.paths.ssh_config.read_text().replace(str(lab.paths.ssh_key), str(wrong)))
    doc = yaml.safe_load(lab.paths.inventory.read_text())
    doc["access"]["ssh"] = {"user": "root", "key": str(wrong), "config": str(config)}
    inv, results = tmp_path / "inv.yaml", tmp_path / "results.json"
    inv.write_text(yaml.safe_dump(doc))
    proc = hakit("check", "--inventory", str(inv), "--property", "hosts", "--json", str(results))
    assert proc.returncode == 3, proc.stdout[-1500:]
    got = json.loads(results.read_text())["results"]
    assert {r["outcome"] for r in got} == {"error"}
    assert all("ssh failed" in r["message"] for r in got), [r["message"] for r in got]
    assert "BEGIN OPENSSH PRIVATE KEY" not in proc.stdout + proc.stderr
