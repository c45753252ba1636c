"""Host checks fail on a lab broken in exactly their way, and pass once restored."""

from __future__ import annotations

import base64
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from breaking import assert_breaks, file_changed, hung, machine_state, run_checks, stopped
from hakit.lab import pki
from hakit.lab.netns import Lab
from hakit.lab.pki import CertPair

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("settled")]
LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def with_env(sshd_config: str, env: str) -> str:
    """sshd takes its first SetEnv line only: the lab's own (SHLVL) gains these variables."""
    assert "\nSetEnv " in sshd_config, "the lab's sshd_config has no SetEnv line to add to"
    return sshd_config.replace("\nSetEnv ", f"\nSetEnv {env} ", 1)


def test_host002_sees_a_skewed_clock(lab: Lab, tmp_path: Path) -> None:
    """cp2's sshd hands every session a clock 30 s ahead (libfaketime), as a host
    whose NTP broke would show it to anything that logs in."""
    if not Path(LIBFAKETIME).exists():
        pytest.fail(f"{LIBFAKETIME} missing: scripts/setup.sh installs the faketime package")
    conf = lab.paths.etc("cp2", "ssh", "sshd_config")

    @contextmanager
    def skewed() -> Iterator[None]:
        with file_changed(conf, lambda t: with_env(t, f'LD_PRELOAD={LIBFAKETIME} FAKETIME="+30s"'),
                          after=lambda: (lab.host("cp2").stop("sshd"), lab.host("cp2").start("sshd"))):
            yield

    assert_breaks(lab, tmp_path, "HOST-002", skewed, "host clocks differ by")


def test_host003_names_the_stopped_haproxy(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "HOST-003", lambda: stopped(lab, "cp2/haproxy"), "haproxy on cp2")


def test_host004_names_the_port_not_listening(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "HOST-004", lambda: stopped(lab, "cp3/etcd"), "etcd client :2379 on cp3")


@contextmanager
def expiring_certs(lab: Lab, tmp_path: Path) -> Iterator[None]:
    """cp2's apiserver certificate re-issued by the lab's CA for 10 days, and the client
    certificate embedded in its scheduler.conf for 12: a leaf file and a kubeconfig's, as a
    renewal done with a short validity would leave them (nothing restarts: the files are what
    the next start serves)."""
    hp = lab.paths.host_pki("cp2")
    conf = hp.parent / "scheduler.conf"
    backup = {p: p.read_bytes() for p in (hp / "apiserver.crt", hp / "apiserver.key", conf)}
    ca = CertPair(hp / "ca.crt", hp / "ca.key")
    pki.issue(ca, hp, "apiserver", "kube-apiserver", server=True, sans=(lab.spec.host("cp2").address,), days=10)
    short = pki.issue(ca, tmp_path, "scheduler", "system:kube-scheduler", client=True, days=12)
    data = base64.b64encode(short.cert.read_bytes()).decode()
    conf.write_text(re.sub(r"client-certificate-data: \S+", f"client-certificate-data: {data}", conf.read_text()))
    try:
        yield
    finally:
        for p, data in backup.items():
            p.write_bytes(data)


def test_host005_names_the_expiring_certificates_soonest_first(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "HOST-005", lambda: expiring_certs(lab, tmp_path),
                  "soonest first: cp2: apiserver expires in 10 days, cp2: scheduler.conf expires in 12 days")


@contextmanager
def swap_on(path: Path) -> Iterator[None]:
    """A real 16 MiB swap file, switched on for the machine (so for every lab host,
    which share its kernel) and off again whatever happens; never while another session of
    make test has a test under way."""
    with machine_state(change=True):
        subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=1M", "count=16", "status=none"], check=True)
        path.chmod(0o600)
        subprocess.run(["mkswap", str(path)], check=True, capture_output=True)
        on = subprocess.run(["swapon", str(path)], capture_output=True, text=True)
        if on.returncode:  # e.g. a container without CAP_SYS_ADMIN, or a filesystem swap cannot live on
            path.unlink(missing_ok=True)
            pytest.skip(f"this machine cannot switch swap on: {on.stderr.strip()}")
        try:
            yield
        finally:
            subprocess.run(["swapoff", str(path)], check=False)
            path.unlink(missing_ok=True)


@pytest.mark.machine_wide
def test_host001_sees_swap_on(lab: Lab, tmp_path: Path) -> None:
    assert_breaks(lab, tmp_path, "HOST-001", lambda: swap_on(tmp_path / "swapfile"), "swap is on: cp1")


def test_a_host_whose_sshd_hangs_is_named_and_does_not_stall_the_audit(lab: Lab, tmp_path: Path) -> None:
    """cp2's sshd frozen (SIGSTOP): its kernel still completes the TCP handshake, but no SSH
    banner ever comes, as from a host swapping to death. The host checks must end (the run's
    timeout here is the bound: a hang fails the test), naming cp2, with the unreachable exit
    code; the other hosts are still read."""
    with hung(lab, "cp2", "sshd"):
        code, results = run_checks(lab.paths.inventory, tmp_path, "HOST-001", "HOST-003", timeout=90)
    for check_id in ("HOST-001", "HOST-003"):
        r = results[check_id]
        assert r["outcome"] == "error" and "host cp2: ssh failed" in r["message"], r
        assert "cp1" not in r["message"] and "cp3" not in r["message"], r["message"]
    assert code == 3, code
