"""The operator's HTTP endpoints: /metrics, and /healthz and /readyz for the kubelet.

- `/healthz` (liveness): 200 while the event loop answers (the handler runs on it, so a
  blocked loop cannot answer) and none of kopf's root tasks (watchers, event poster,
  daemon killer, peering, admission server, ...) has ended. It does not depend on the
  apiserver: restarting the pod would not bring an unreachable apiserver back.
- `/readyz` (readiness): liveness, plus kopf's startup activities finished (the
  configuration was loaded, the providers built, and the BootProfiles and VMNodes
  listed: the apiserver answered the operator's identity), plus the apiserver answers
  now (one cheap authenticated request, `GET /version`, at most every 10 seconds), plus
  the admission webhook (when configured) accepts connections: a replica put behind the
  webhook Service before it listens would make the apiserver skip the checks
  (failurePolicy Ignore). A standby replica (kopf peering) is ready too: it has started,
  serves the admission webhook and /metrics, and takes over as soon as the active one
  goes.

Both answer JSON: `{"status": "ok"|"failing", "checks": {name: "ok" | why}}`. Responses
close their connection, so no idle keep-alive connection outlives the operator's
shutdown.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

API_CHECK_EVERY = 10.0       # seconds a successful or failed apiserver check is trusted
API_CHECK_TIMEOUT = 5.0


def parse_bind_address(text: str) -> tuple[str, int] | None:
    """`HOST:PORT`, `:PORT` (every interface) or `[V6]:PORT`; `0` or `` turns it off."""
    text = text.strip()
    if text in ("", "0"):
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT (or 0 to turn it off), got {text!r}")
    host = host.removeprefix("[").removesuffix("]") or "0.0.0.0"
    return host, int(port)


class Health:
    """What the probes judge: kopf's root tasks, its startup, the apiserver."""

    def __init__(self, api_check: Callable[[], Awaitable[None]] | None = None,
                 webhook: tuple[str, int] | None = None) -> None:
        self.root_tasks: Collection[asyncio.Task[Any]] = ()
        self.started = asyncio.Event()          # kopf's startup activities finished
        self._api_check = api_check
        self._api_verdict: tuple[float, str] | None = None
        self._api_lock = asyncio.Lock()
        self._webhook = webhook                 # where the admission server listens
        self._webhook_listening = False         # once it does, its task's end is liveness's

    def liveness(self) -> dict[str, str]:
        ended = sorted(task.get_name() for task in self.root_tasks if task.done())
        return {"operator": "ok" if not ended else f"kopf tasks ended: {', '.join(ended)}"}

    async def readiness(self) -> dict[str, str]:
        checks = self.liveness()
        checks["startup"] = ("ok" if self.started.is_set() else
                             "kopf's startup activities have not finished (configuration, "
                             "providers, initial listing)")
        if self._api_check is not None:
            checks["apiserver"] = (await self._apiserver() if self.started.is_set()
                                   else "not checked before startup")
        if self._webhook is not None:
            checks["webhook"] = await self._webhook_check(*self._webhook)
        return checks

    async def _webhook_check(self, host: str, port: int) -> str:
        if not self._webhook_listening:
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                   API_CHECK_TIMEOUT)
            except (OSError, TimeoutError):
                return f"the admission webhook is not listening on {host}:{port} yet"
            writer.close()
            self._webhook_listening = True
        return "ok"

    async def _apiserver(self) -> str:
        assert self._api_check is not None
        async with self._api_lock:
            now = time.monotonic()
            if self._api_verdict is None or now - self._api_verdict[0] >= API_CHECK_EVERY:
                try:
                    await asyncio.wait_for(self._api_check(), API_CHECK_TIMEOUT)
                    verdict = "ok"
                except TimeoutError:
                    verdict = f"no answer from the apiserver in {API_CHECK_TIMEOUT:.0f}s"
                except Exception as error:
                    verdict = f"apiserver: {type(error).__name__}: {str(error)[:200]}"
                self._api_verdict = (time.monotonic(), verdict)
            return self._api_verdict[1]


def _answer(checks: dict[str, str]) -> web.Response:
    ok = all(value == "ok" for value in checks.values())
    return web.json_response({"status": "ok" if ok else "failing", "checks": checks},
                             status=200 if ok else 503)


def health_routes(health: Health) -> list[web.RouteDef]:
    async def healthz(request: web.Request) -> web.Response:
        return _answer(health.liveness())

    async def readyz(request: web.Request) -> web.Response:
        return _answer(await health.readiness())

    return [web.get("/healthz", healthz), web.get("/readyz", readyz)]


def metrics_routes() -> list[web.RouteDef]:
    async def metrics(request: web.Request) -> web.Response:
        # In the loop on purpose: the gauges read the operator's in-memory picture.
        response = web.Response(body=generate_latest(REGISTRY))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    return [web.get("/metrics", metrics)]


@web.middleware
async def _close_connections(request: web.Request,
                             handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                             ) -> web.StreamResponse:
    response = await handler(request)
    response.force_close()
    return response


async def serve(address: tuple[str, int], routes: list[web.RouteDef]) -> web.AppRunner:
    """Start serving `routes` on `address`; the caller cleans the runner up."""
    app = web.Application(middlewares=[_close_connections])
    app.add_routes(routes)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, address[0], address[1]).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
