"""`hakit lab ...`: bring the local HA lab up, inspect it, take it down."""

from __future__ import annotations

import argparse
import os
import sys
import time

from hakit import wait
from hakit.cluster import Cluster
from hakit.cluster.steady import said
from hakit.errors import HakitError, LabError, PreconditionError
from hakit.inventory import load
from hakit.lab import binaries, nodes
from hakit.lab.ctl import ACTIONS, ctl
from hakit.lab.kubeadm import KubeadmLab
from hakit.lab.net import free_subnet
from hakit.lab.netns import Lab, down
from hakit.lab.paths import LabPaths
from hakit.lab.topology import LabSpec
from hakit.paths import kubeadm_lab_dir, lab_dir
from hakit.table import table

LAB_HELP = """\
The lab is a real HA control plane on this machine: three control-plane hosts
(etcd, kube-apiserver, kube-controller-manager, kube-scheduler, haproxy,
keepalived, sshd), kwok workers and a monitoring host (Prometheus, Alertmanager,
a webhook pager), each host in its own network namespace on an isolated bridge.
Needs root. State lives in $HAKIT_LAB_DIR (default ~/.local/state/hakit/lab).

  hakit lab doctor     what is missing, and the command that installs it
  hakit lab up         build it (binaries cached in ~/.cache/hakit/bin)
  eval "$(hakit lab env)"   point kubectl and hakit at it
  hakit lab down       remove everything it made, even after a crash
  hakit lab ctl stop cp2 etcd   the lab's systemctl (what disruptive checks run over SSH)
"""


def add_lab_commands(sub: argparse._SubParsersAction) -> None:
    lab = sub.add_parser("lab", help="the local HA lab", description=LAB_HELP,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    lab_sub = lab.add_subparsers(dest="lab_command", required=True, parser_class=type(lab))
    up = lab_sub.add_parser("up", help="bring the lab up and wait until every component is healthy")
    up.add_argument("--workers", type=int, default=3, help="kwok worker hosts, one node each (default 3)")
    up.add_argument("--bulk-nodes", type=int, default=0, metavar="N",
                    help="N more nodes, managed together by one extra kwok process (scale work)")
    up.add_argument("--subnet", help="the lab's /24 (default: the first free of a few candidates)")
    up.add_argument("--prefix", default="hakit",
                    help="prefix of the lab's namespaces and links, to run a second lab beside the first")
    up.add_argument("--timeout", type=float, default=240, help="seconds to wait for health (default 240)")
    up.add_argument("--kubeadm", action="store_true",
                    help="the kubeadm lab instead: 3 control-plane + 2 worker hosts as LXC system containers "
                         "(systemd, containerd, kubelet), installed by hakit's provisioning runbooks")
    up.set_defaults(func=cmd_up)
    st = lab_sub.add_parser("status", help="each component's real health; exit 0 only when the lab is up")
    st.add_argument("--kubeadm", action="store_true", help="the kubeadm lab's: its containers, static pods, "
                    "etcd, the VIP holder and nodes, as the disruptive checks' steady state reads them")
    st.set_defaults(func=cmd_status)
    lab_sub.add_parser("env", help="shell exports for kubectl and hakit").set_defaults(func=cmd_env)
    dn = lab_sub.add_parser("down", help="remove every process, namespace, link and file")
    dn.add_argument("--prefix", help="also clean namespaces with this prefix when the state file is gone")
    dn.add_argument("--kubeadm", action="store_true", help="remove the kubeadm lab (every container, the bridge)")
    dn.set_defaults(func=cmd_down)
    lab_sub.add_parser("doctor", help="what is missing and how to install it").set_defaults(func=cmd_doctor)
    ctl = lab_sub.add_parser(
        "ctl", help="stop, start or kill one lab component: the lab's systemctl",
        description="What `systemctl` or a parked static-pod manifest does on a real host, for a lab host. "
        "hakit's fault layer runs it over SSH on the host (the lab inventory's disruptive.control). "
        "`kubelet` means the host's kwok. is-active exits 0 when the component runs, 3 when not.")
    ctl.add_argument("action", choices=ACTIONS)
    ctl.add_argument("host", help="lab host name, e.g. cp2")
    ctl.add_argument("component", help="e.g. etcd, kube-apiserver, keepalived, haproxy, kubelet")
    ctl.set_defaults(func=cmd_ctl)


def _require_root() -> None:
    if os.geteuid() != 0:
        raise PreconditionError("the lab needs root (network namespaces); run with sudo")


def cmd_up(args: argparse.Namespace) -> int:
    _require_root()
    if args.kubeadm:
        return kubeadm_up(args)
    paths = LabPaths(lab_dir())
    try:
        existing = Lab.load(paths.root)
    except LabError:
        existing = None
    if existing and any(s.pid for s in existing.status()):
        raise LabError(f"a lab is already up at {paths.root}; `hakit lab status`, or `hakit lab down` first")
    down(paths, LabSpec(prefix=args.prefix), progress=lambda _: None)  # leftovers of a crashed run
    try:
        spec = LabSpec(subnet=args.subnet or free_subnet(), prefix=args.prefix, workers=args.workers,
                       bulk_nodes=args.bulk_nodes)
    except ValueError as e:
        raise LabError(str(e)) from None
    lab = Lab(spec, paths)
    started = time.monotonic()

    def progress(msg: str) -> None:
        print(f"[{time.monotonic() - started:5.1f}s] {msg}", flush=True)

    try:
        lab.up(progress, timeout=args.timeout)
    except (LabError, KeyboardInterrupt):
        print(f"lab left as it is for inspection (logs: {paths.root}/hosts/*/log/); "
              "`hakit lab down` removes it", file=sys.stderr)
        raise
    print(_status_table(lab))
    print(f"\nlab ready in {time.monotonic() - started:.1f}s. Next: eval \"$(hakit lab env)\"; hakit audit")
    return 0


def kubeadm_up(args: argparse.Namespace) -> int:
    """Idempotent, as `lab up` is: a healthy lab is reported; a stopped one (its containers
    stopped, this machine restarted) is started again as it was; a broken or stale one is
    named, removed and built again."""
    root = kubeadm_lab_dir()
    started = time.monotonic()

    def progress(msg: str) -> None:
        print(f"[{time.monotonic() - started:5.1f}s] {msg}", flush=True)
    if root.exists():
        try:
            kept: KubeadmLab | None = KubeadmLab.load(root)
            rows, unsteady = kept.status()   # type: ignore[union-attr]
        except HakitError as e:
            kept, rows, unsteady = None, [], {"lab": str(e)}
        stopped = [host for host, component, state, _ in rows if component == "container" and state == "STOPPED"]
        if kept is not None and not unsteady:
            print(f"a kubeadm lab is up at {root}: every container, static pod and etcd member healthy, one VIP "
                  "holder, every node Ready (`hakit lab status --kubeadm`)")
            return 0
        if kept is not None and stopped and kept.inventory.exists():
            progress(f"the kubeadm lab at {root} is stopped ({', '.join(stopped)}): starting its containers again")
            try:
                kept.resume(progress)
            except (HakitError, wait.WaitTimeout) as e:
                raise LabError(f"the kubeadm lab did not come back: {e}; `hakit lab down --kubeadm`, then "
                               "`hakit lab up --kubeadm` builds it again") from None
            print(f"\nkubeadm lab up again in {time.monotonic() - started:.0f}s")
            return 0
        if kept is not None and not stopped and kept.inventory.exists():   # settling after a fault or a restart?
            try:
                Cluster(load(kept.inventory)).wait_steady(60, "the kubeadm lab to settle", interval=2.0)
                print(f"a kubeadm lab is up at {root}, healthy after a moment (`hakit lab status --kubeadm`)")
                return 0
            except (HakitError, wait.WaitTimeout) as e:
                unsteady = {"lab": str(e)}
        progress(f"the kubeadm lab at {root} is not healthy ({said(unsteady)}): removing it and building it again")
        if kept is not None:
            kept.down(progress)
        else:
            nodes.destroy(nodes.Spec(subnet="0.0.0.0/24", prefix="hka"), nodes.Paths(root))
    lab = KubeadmLab(nodes.Spec(subnet=args.subnet or free_subnet(), prefix="hka"), nodes.Paths(root))
    try:
        lab.up(progress)
    except (HakitError, KeyboardInterrupt):
        print(f"kubeadm lab left as it is for inspection under {root}; `hakit lab down --kubeadm` removes it",
              file=sys.stderr)
        raise
    print(f"\nkubeadm lab ready in {time.monotonic() - started:.0f}s. Next: "
          f"hakit audit --inventory {lab.inventory}")
    return 0


def _status_table(lab: Lab) -> str:
    rows = [(s.host, s.component, str(s.pid or "-"), s.address, "ok" if s.healthy else "DOWN", s.detail)
            for s in lab.status()]
    return table(("HOST", "COMPONENT", "PID", "ADDRESS", "HEALTH", "DETAIL"), rows)


def cmd_status(args: argparse.Namespace) -> int:
    if args.kubeadm:
        rows, unsteady = KubeadmLab.load().status()
        print(table(("HOST", "COMPONENT", "HEALTH", "DETAIL"), rows))
        print("\nkubeadm lab: up" if not unsteady else f"\nkubeadm lab: not healthy: {said(unsteady)}")
        return 0 if not unsteady else 1
    lab = Lab.load()
    statuses = lab.status()
    print(_status_table(lab))
    holders = lab.vip_holders()
    print(f"\nVIP {lab.spec.vip}: held by {', '.join(holders) or 'nobody'}")
    return 0 if all(s.healthy for s in statuses) and len(holders) == 1 else 1


def cmd_env(args: argparse.Namespace) -> int:
    for key, value in Lab.load().env().items():
        print(f'export {key}="{value}"')
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    _require_root()
    if args.kubeadm:
        try:
            KubeadmLab.load().down()
        except LabError as e:
            print(e)
        return 0
    down(spec=LabSpec(prefix=args.prefix) if args.prefix else None)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    gaps = binaries.missing()
    if not gaps:
        print("everything the lab needs is installed")
        return 0
    print(table(("MISSING", "FIX"), [(m.program, m.fix) for m in gaps]))
    return 4


def cmd_ctl(args: argparse.Namespace) -> int:
    return ctl(args.action, args.host, args.component)
