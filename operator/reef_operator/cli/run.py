"""`reef-operator run`: start the operator (kopf) with the reef handlers."""

from __future__ import annotations

import argparse
import logging


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser(
        "run", help="run the operator",
        description="Run the operator against the cluster in KUBECONFIG (or in-cluster "
        "credentials). Configuration: environment, then the reef-operator-config ConfigMap, "
        "then ~/.vers/config.json; the Vers API key from the reef-vers-credentials Secret.")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", default=[],
                       help="serve only this namespace (repeatable; globs allowed)")
    scope.add_argument("-A", "--all-namespaces", action="store_true",
                       help="serve every namespace (the default)")
    peering = run.add_mutually_exclusive_group()
    peering.add_argument("--standalone", action="store_true",
                         help="no peering: this replica is always active")
    peering.add_argument("--peering", default="reef-operator",
                         help="kopf peering name: one active replica, the others stand by "
                         "(default: %(default)s)")
    run.add_argument("--priority", type=int, default=0,
                     help="peering priority; the highest-priority replica is active")
    run.add_argument("--liveness", default=None,
                     help="serve a liveness probe, e.g. http://0.0.0.0:8080/healthz")
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def run(args: argparse.Namespace) -> int:
    import kopf

    import reef_operator.controllers  # noqa: F401  (registers the handlers)
    from reef_operator import webhook
    from reef_operator.controllers import admission

    if webhook.enabled():
        admission.register()

    kopf.configure(verbose=args.verbose)
    logging.getLogger("reef_operator").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    kopf.run(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        standalone=args.standalone,
        peering_name=None if args.standalone else args.peering,
        priority=args.priority,
        liveness_endpoint=args.liveness,
    )
    return 0
