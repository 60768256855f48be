"""The operator's HTTP endpoints: bind addresses, liveness, readiness, /metrics."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from reef_devkit.controlplane.processes import free_port
from reef_operator import probes


def test_bind_addresses() -> None:
    assert probes.parse_bind_address("0.0.0.0:8080") == ("0.0.0.0", 8080)
    assert probes.parse_bind_address(":8081") == ("0.0.0.0", 8081)
    assert probes.parse_bind_address("[::]:9090") == ("::", 9090)
    assert probes.parse_bind_address("0") is None
    assert probes.parse_bind_address("") is None
    for wrong in ("8080", "host:", "host:http", "host:70000"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            probes.parse_bind_address(wrong)


async def test_probes_over_http() -> None:
    api_calls: list[float] = []
    apiserver_down = False

    async def api_check() -> None:
        api_calls.append(asyncio.get_running_loop().time())
        if apiserver_down:
            raise ConnectionRefusedError("connection refused")

    health = probes.Health(api_check)
    alive = asyncio.create_task(asyncio.sleep(3600), name="resource observer")
    health.root_tasks = [alive]
    port = free_port()
    runner = await probes.serve(("127.0.0.1", port),
                                probes.health_routes(health) + probes.metrics_routes())
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            live = await http.get("/healthz")
            assert live.status_code == 200 and live.json()["status"] == "ok"
            assert live.headers["connection"] == "close"
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert "startup" in ready.json()["checks"]["startup"]
            assert api_calls == []                 # nothing to ask before startup

            health.started.set()
            assert (await http.get("/readyz")).status_code == 200
            assert (await http.get("/readyz")).status_code == 200
            assert len(api_calls) == 1             # the apiserver's answer is reused

            apiserver_down = True
            health._api_verdict = None             # as if the 10 seconds had passed
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert "connection refused" in ready.json()["checks"]["apiserver"]
            assert (await http.get("/healthz")).status_code == 200   # not a liveness matter

            alive.cancel()
            await asyncio.gather(alive, return_exceptions=True)
            live = await http.get("/healthz")
            assert live.status_code == 503
            assert "resource observer" in live.json()["checks"]["operator"]

            scrape = await http.get("/metrics")
            assert scrape.status_code == 200
            assert scrape.headers["content-type"].startswith("text/plain")
            assert "# TYPE reef_reconcile_total counter" in scrape.text
    finally:
        await runner.cleanup()


async def test_not_ready_until_the_admission_webhook_listens() -> None:
    async def api_check() -> None:
        return None

    webhook_port = free_port()
    health = probes.Health(api_check, webhook=("127.0.0.1", webhook_port))
    health.started.set()
    port = free_port()
    runner = await probes.serve(("127.0.0.1", port), probes.health_routes(health))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["webhook"] == (
                f"the admission webhook is not listening on 127.0.0.1:{webhook_port} yet")
            server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1",
                                                webhook_port)
            async with server:
                ready = await http.get("/readyz")
                assert ready.status_code == 200 and ready.json()["checks"]["webhook"] == "ok"
    finally:
        await runner.cleanup()
