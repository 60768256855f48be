"""`reef-operator dev up|down|env|status`: a real local control plane for development.

Added to `reef-operator` through the entry point group `reef_operator.commands`
(see reef_operator.cli.main), so the operator's own command line carries it only
where the development kit is installed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reef_devkit.controlplane import ControlPlaneError, LocalControlPlane
from reef_devkit.controlplane.cluster import default_state_dir


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dev = commands.add_parser(
        "dev",
        help="a real local control plane (etcd, kube-apiserver, kube-controller-manager)",
        description="Run a real Kubernetes control plane on loopback, built from Debian's "
        "kubernetes source package on first use and cached per user.",
    )
    dev.add_argument("action", choices=("up", "down", "env", "status"),
                     help="up: start (idempotent) and install CRDs + RBAC; down: stop and remove "
                     "everything; env: print export lines for eval; status: show processes")
    dev.add_argument("--state-dir", type=Path, default=default_state_dir(),
                     help="where the control plane keeps its data (default: %(default)s)")
    dev.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        return _dev(args.action, LocalControlPlane(args.state_dir, log=_stderr))
    except ControlPlaneError as error:
        print(f"reef-operator dev {args.action}: {error}", file=sys.stderr)
        return 1


def _dev(action: str, plane: LocalControlPlane) -> int:
    if action == "up":
        plane.up()
        print(f"export KUBECONFIG={plane.kubeconfig}")
    elif action == "down":
        plane.down()
        _stderr("control plane stopped and removed")
    elif action == "env":
        for line in plane.env_lines():
            print(line)
    else:
        for component, pid in plane.running().items():
            print(f"{component:24} {f'running (pid {pid})' if pid else 'stopped'}")
    return 0


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
