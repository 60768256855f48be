"""`reef-operator`: the operator's command line.

    reef-operator run                      run the operator
    reef-operator dev up|down|env|status   a real local control plane for development
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reef_operator.cli import run as run_command
from reef_operator.testing.controlplane import ControlPlaneError, LocalControlPlane
from reef_operator.testing.controlplane.cluster import default_state_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reef-operator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

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

    run_command.add_parser(commands)

    args = parser.parse_args(argv)
    if args.command == "run":
        return run_command.run(args)
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


if __name__ == "__main__":
    sys.exit(main())
