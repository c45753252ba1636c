"""Start and stop lab components as detached processes inside their host's
namespace, and remember their pids in the state file so any later hakit
process (or `lab down` after a crash) can find them."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from hakit.lab.components import Component
from hakit.lab.paths import LabPaths

_state_lock = threading.Lock()

# Each component runs under a restart loop, as kubelet restarts a static pod and
# systemd a unit (kube-scheduler, for one, exits when it loses its lease). The
# loop and the component share a process group: stopping or killing the group is
# a component that stays down until started, a fault hook's meaning of "down".
# Each host also gets its own UTS namespace, so hostnames (and with them
# leader-election identities) are the host's, as on separate machines.
EXIT_MARKER = "--- hakit: exited with"
SUPERVISOR = ('hostname "$0" && while :; do "$@"; echo "' + EXIT_MARKER + ' $?, restarting in 1 s"; '
              'sleep 1; done')


class State:
    """The lab's state file: its spec and each component's process. Written atomically.

    A process is its pid and its start time: pid_max is 32768 here, and after an hour of tests
    a stopped component's pid may belong to some other process, which `start` would take for
    the component and `stop` would signal. A pid whose start time differs is not the component's."""

    def __init__(self, paths: LabPaths) -> None:
        self.paths = paths

    def load(self) -> dict:
        try:
            return json.loads(self.paths.state_file.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def save(self, doc: dict) -> None:
        tmp = self.paths.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))
        os.replace(tmp, self.paths.state_file)

    def set_pid(self, key: str, pid: int | None) -> None:
        """Read, change and write under a lock this process's threads and every other process
        share: the lab's ctl is one process per command, and a runbook acting on every host at
        once (etcd-restore-snapshot restarting each kubelet) lost one host's record to another's
        write, so a running kwok read as stopped and every later steady-state wait failed."""
        with _state_lock, self.paths.state_file.with_suffix(".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)   # released when the file is closed
            doc = self.load()
            procs = doc.setdefault("processes", {})
            if pid is None:
                procs.pop(key, None)
            else:
                procs[key] = {"pid": pid, "started": started(pid)}
            self.save(doc)

    def pid(self, key: str) -> int | None:
        """The component's pid while that very process runs, else None."""
        return _same(self.load().get("processes", {}).get(key))

    def pids(self) -> set[int]:
        """Every component process recorded that still runs."""
        return {pid for rec in self.load().get("processes", {}).values() if (pid := _same(rec))}


def started(pid: int) -> int | None:
    """When pid started, in clock ticks since boot (/proc/PID/stat's 22nd field)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _same(record: object) -> int | None:
    """The pid of a state record if the process it names still runs."""
    if isinstance(record, int):   # a state file of a lab brought up before start times were kept
        pid, began = record, None
    elif isinstance(record, dict) and isinstance(record.get("pid"), int):
        pid, began = record["pid"], record.get("started")
    else:
        return None
    return pid if alive(pid) and (began is None or started(pid) == began) else None


def alive(pid: int | None, argv0: str | None = None) -> bool:
    """True when pid runs (and, if given, runs argv0: pids get reused)."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[1].split()[0] == "Z":
        return False
    return argv0 is None or (bool(cmdline) and cmdline[0].decode(errors="replace") == argv0)


def start(comp: Component, netns: str, paths: LabPaths, state: State) -> int:
    """Launch a component in its namespace, in its own session so a signal to the
    process group reaches everything it forked (haproxy's worker, keepalived's VRRP child)."""
    log = paths.log(comp.host, comp.name)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n--- hakit: starting {comp.name} at {time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode())
        out.flush()
        argv = ["ip", "netns", "exec", netns, "unshare", "--uts", "--", "sh", "-c", SUPERVISOR, comp.host,
                *comp.argv]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "HOME": str(paths.host(comp.host))})
    state.set_pid(comp.key, proc.pid)
    return proc.pid


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal pid's whole group when pid leads one (a component and its supervisor),
    else pid alone (a child found in a namespace)."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process is left in process group pgid."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def stop(pid: int | None, timeout: float = 10.0, sig: signal.Signals = signal.SIGTERM) -> None:
    """Signal a component's process group and wait until all of it has exited (the
    supervisor dies first; the component may take a moment to shut down); SIGKILL
    what lingers past the timeout."""
    if not pid or not alive(pid):
        return
    leads = os.getpgid(pid) == pid
    running = (lambda: group_alive(pid)) if leads else (lambda: alive(pid))
    signal_group(pid, sig)
    deadline = time.monotonic() + timeout
    while running() and time.monotonic() < deadline:
        time.sleep(0.05)
    if running():
        # The supervisor (the group's leader) may be gone and reaped by now: signal the
        # group by its id, not through the leader's pid.
        try:
            os.killpg(pid, signal.SIGKILL) if leads else os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        while running():
            time.sleep(0.05)
    _reap(pid)


def _reap(pid: int) -> None:
    """Collect our own children so they do not linger as zombies."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
