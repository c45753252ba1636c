"""What the benchmarks share: timing a child process alone, loading the machine, and
running hakit as it runs once installed. Not part of hakit; imported as `common` by the
scripts beside it (`python bench/x.py` puts bench/ first on the path)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import hakit


def timed(argv: list[str], cap_mib: float | None = None,
          env: dict[str, str] | None = None) -> tuple[float, float, subprocess.CompletedProcess[str], bool]:
    """(wall seconds, peak RSS MiB of this child alone, its exit and output, whether it was
    killed at cap_mib): wait4 on its pid, so neither the lab's processes nor the other tool's
    run count. With a cap, its memory (and its end: wall time to 50 ms) is looked at every 50 ms,
    so the kernel never has to choose what to kill."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, text=True, env=env)
        capped = False
        while True:   # wait4 reaps it (Popen.poll would, and leave no usage to read)
            pid, status, usage = os.wait4(proc.pid, 0 if cap_mib is None else os.WNOHANG)
            if pid:
                break
            if cap_mib is not None and not capped and rss_mib(proc.pid) > cap_mib:
                proc.kill()
                capped = True
            time.sleep(0.05)
        wall = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (wall, usage.ru_maxrss / 1024,
                subprocess.CompletedProcess(argv, proc.returncode, out.read(), err.read()), capped)


def rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
    except (OSError, StopIteration):
        return 0.0   # exited (or a zombie) between the poll and the read


def memory_available_mib() -> float:
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:")) / 1024


@contextmanager
def busy_loops(n: int) -> Iterator[None]:
    """n processes spinning on the CPU throughout (n = the cores: the machine saturated)."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def as_installed(inventory: Path) -> dict[str, str]:
    """The environment to time hakit in, as installed from a wheel: its bytecode compiled (pip
    does it at install) and the checks' assertion rewriting cached by a first collection, so
    a timed run is never the first one. (This machine's shell sets PYTHONDONTWRITEBYTECODE,
    which would have every run compile the kubernetes client and rewrite every check.)"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(hakit.__file__).parent)], env=env, check=True)
    subprocess.run([sys.executable, "-m", "hakit.cli", "check", "--inventory", str(inventory), "--",
                    "--collect-only", "-q"], env=env, capture_output=True)
    return env
