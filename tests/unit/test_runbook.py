"""The runbook engine's pure parts: parameters, remediation from an audit, the restore swap."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hakit.errors import ConfigError
from hakit.inventory import load
from hakit.model import Check, Outcome, Result, Severity


def test_runbook_parameters_are_checked_in_one_line() -> None:
    from hakit.runbook import get
    rb = get("control-plane-restart")
    with pytest.raises(ConfigError, match="parameter host is required"):
        rb.resolve({"component": "etcd"})
    with pytest.raises(ConfigError, match=r"component='keepalived'; expected one of kube-apiserver"):
        rb.resolve({"host": "cp1", "component": "keepalived"})
    with pytest.raises(ConfigError, match="unknown parameter\\(s\\) colour"):
        rb.resolve({"host": "cp1", "component": "etcd", "colour": "red"})
    assert get("etcd-backup").resolve({}) == {"keep": "7", "dir": ""}


def test_an_audit_remediates_only_the_named_runbooks_and_never_guesses_parameters() -> None:
    from hakit.runbook import load_all
    from hakit.runbook.remediate import plan, remediate

    def result(check_id: str, outcome: str, runbook: str) -> Result:
        return Result(Check(check_id, "t", "etcd", Severity.CRITICAL, "fix", runbook), Outcome(outcome), "", 0.0, [],
                      "n")
    results = [result("ETCD-008", "fail", "etcd-backup"), result("API-002", "fail", "control-plane-restart"),
               result("API-004", "pass", "vip-recover"), result("CP-002", "warn", "control-plane-restart")]
    assert plan(results, [], ["etcd-backup"], load_all()) == [("etcd-backup", {}, ["ETCD-008"])]
    assert plan(results, [], ["vip-recover"], load_all()) == [], "a passing check is not remediated"
    [run] = remediate(results, [], None, ["control-plane-restart"], print)  # type: ignore[arg-type]
    assert run["status"] == "not run" and run["for_checks"] == ["API-002", "CP-002"]
    assert run["error"].endswith("hakit runbook run control-plane-restart host=… component=…")


def test_the_restore_swap_is_safe_to_repeat_and_works_on_a_mount_point(tmp_path: Path) -> None:
    """A resumed etcd-restore-snapshot may run its swap again: the restored data must stay.
    The data dir is a mount point of its own (as on production hosts), where moving the
    data dir itself fails with EBUSY: only member/ inside it moves."""
    import importlib.util

    from hakit.cluster.ssh import quote as ssh_quote
    from hakit.runbook import RUNBOOKS_DIR, Context
    spec = importlib.util.spec_from_file_location("restore", RUNBOOKS_DIR / "etcd_restore_snapshot.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    inv_file = tmp_path / "inv.yaml"
    inv_file.write_text("cluster: {kubeconfig: /dev/null}\napi: {vip: 1.2.3.4}\n"
                        "control_plane: {hosts: [{name: cp1, address: 1.1.1.1}], "
                        f"paths: {{etcd_data: '{tmp_path}/{{host}}/etcd'}}}}\n")
    data = tmp_path / "cp1" / "etcd"
    data.mkdir(parents=True)
    if subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(data)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        (data / "member" / "old").mkdir(parents=True)
        (data / ".hakit-restored" / "member" / "new").mkdir(parents=True)
        (data / ".hakit-restore.db").write_text("snapshot")
        command = ssh_quote(module.datadir.SWAP_IN_RESTORED,
                            *module.swap_args(Context(load(inv_file), {}, {"stamp": "T"}), "cp1"))
        for _ in range(2):
            subprocess.run(["sh", "-c", command], check=True)
            assert (data / "member" / "new").is_dir() and (data / ".hakit-before-restore-T" / "member" / "old").is_dir()
        assert sorted(p.name for p in data.iterdir()) == [".hakit-before-restore-T", "member"]
    finally:
        subprocess.run(["umount", str(data)], check=True)
