"""`reef-operator run`: start the operator (kopf) with the reef handlers."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from typing import Any

from reef_operator import probes

logger = logging.getLogger("reef_operator")


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
    run.add_argument("--metrics-bind-address", default="0", metavar="HOST:PORT",
                     type=_bind_address,
                     help="serve Prometheus metrics at /metrics here, e.g. 0.0.0.0:8080 "
                     "(default: 0, off)")
    run.add_argument("--health-probe-bind-address", default="0", metavar="HOST:PORT",
                     type=_bind_address,
                     help="serve /healthz (liveness) and /readyz (readiness) here, e.g. "
                     "0.0.0.0:8081 (default: 0, off); may equal the metrics address")
    run.add_argument("--log-format", choices=("text", "json"), default="text",
                     help="text lines, or one JSON object per line (default: %(default)s)")
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def _bind_address(text: str) -> tuple[str, int] | None:
    try:
        return probes.parse_bind_address(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def run(args: argparse.Namespace) -> int:
    from reef_operator import logs

    logs.configure(args.log_format, args.verbose)
    try:
        asyncio.run(_operate(args))
    except asyncio.CancelledError:
        pass
    except OSError as error:   # e.g. a bind address in use
        logger.error("reef-operator run: %s", error)
        return 1
    return 0


async def _operate(args: argparse.Namespace) -> None:
    """kopf's operator (`kopf.spawn_tasks` + `kopf.run_tasks`), with our HTTP endpoints
    started first so kopf's shutdown does not count them among its hung tasks."""
    import kopf

    import reef_operator.controllers  # noqa: F401  (registers the handlers)
    from reef_operator import webhook
    from reef_operator.controllers import admission, delegation_admission, kopf_internals

    if webhook.enabled():
        admission.register()
        kopf_internals.reshape_webhooks(delegation_admission.namespace_selectors)

    health = probes.Health(api_check=_apiserver_answers, webhook=webhook.listen_address())
    endpoints: dict[tuple[str, int], list[Any]] = {}
    if args.metrics_bind_address:
        endpoints.setdefault(args.metrics_bind_address, []).extend(probes.metrics_routes())
    if args.health_probe_bind_address:
        endpoints.setdefault(args.health_probe_bind_address, []).extend(
            probes.health_routes(health))
    runners = []
    try:
        for address, routes in endpoints.items():
            runners.append(await probes.serve(address, routes))
            logger.info("serving %s on %s:%d", " ".join(sorted(r.path for r in routes)),
                        *address)
        existing = asyncio.all_tasks()
        tasks = await kopf.spawn_tasks(
            clusterwide=not args.namespace,
            namespaces=args.namespace,
            standalone=args.standalone,
            peering_name=None if args.standalone else args.peering,
            priority=args.priority,
            ready_flag=health.started,
        )
        health.root_tasks = tasks
        await kopf.run_tasks(tasks, ignored=existing)
    finally:
        for runner in runners:
            with contextlib.suppress(Exception):
                await runner.cleanup()


async def _apiserver_answers() -> None:
    """One cheap authenticated request (GET /version) with the operator's own client."""
    from kubernetes import client

    from reef_operator.controllers import runtime

    rt = runtime.installed()
    if rt is None:
        raise RuntimeError("the operator runtime is not initialised")
    await asyncio.to_thread(client.VersionApi(rt.kube.api).get_code,
                            _request_timeout=probes.API_CHECK_TIMEOUT)
