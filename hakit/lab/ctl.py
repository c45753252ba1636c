"""The lab's systemctl: stop, start or kill one component of a lab host, or ask
whether it runs. hakit's fault layer runs it over SSH on the host, as it runs
systemctl on a real one, so it must start fast: it imports no Kubernetes client.

    python -m hakit.lab.ctl stop cp2 etcd
"""

from __future__ import annotations

import sys

from hakit.errors import HakitError
from hakit.lab.netns import Lab

ACTIONS = ("stop", "start", "kill", "is-active", "rejoin", "enable")


def ctl(action: str, host: str, component: str) -> int:
    """Exit status as systemctl's: is-active says 0 when running and 3 when not.
    The lab's etcd flags list every member already, so rejoin needs no --initial-cluster."""
    lab_host = Lab.load().host(host)
    name = "kwok" if component == "kubelet" else component   # kwok is the lab's kubelet
    if action == "enable":   # `hakit lab up` starts every component: nothing boots on its own
        return 0
    if action == "is-active":
        return 0 if lab_host.is_running(name) else 3
    if action == "rejoin":   # etcd with an empty data dir, joining the running cluster as an added member
        lab_host.start(name, extra_args=("--initial-cluster-state=existing",))
        return 0
    getattr(lab_host, action)(name)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in ACTIONS:
        print(f"usage: python -m hakit.lab.ctl {{{'|'.join(ACTIONS)}}} HOST COMPONENT", file=sys.stderr)
        return 2
    try:
        return ctl(*argv)
    except HakitError as e:
        print(f"hakit lab ctl: {e}", file=sys.stderr)
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
