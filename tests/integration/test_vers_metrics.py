"""Platform-call metrics: the Vers client against the simulator, every attempt counted."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY, generate_latest

from reef_devkit.controlplane.processes import free_port
from reef_devkit.versim.harness import VersSimulator
from reef_operator.providers.vers import errors
from reef_operator.providers.vers.client import RetryPolicy, VersClient


def calls(endpoint: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("reef_platform_requests_total",
                                     {"endpoint": endpoint, "outcome": outcome}) or 0.0


def timed(endpoint: str) -> float:
    return REGISTRY.get_sample_value("reef_platform_request_duration_seconds_count",
                                     {"endpoint": endpoint}) or 0.0


async def test_requests_are_counted_by_endpoint_template_and_outcome(
        vers: VersClient, versim: VersSimulator) -> None:
    versim.reset_request_counts()
    listed, timings = calls("GET /vms", "ok"), timed("GET /vms")
    await vers.list_vms()
    await vers.list_vms()
    assert calls("GET /vms", "ok") - listed == 2
    assert timed("GET /vms") - timings == 2
    assert versim.request_counts().get("GET /vms") == 2     # what the platform saw

    unknown = "00000000-dead-beef-0000-000000000000"
    missing = calls("GET /vm/{id}/status", "4xx")
    with pytest.raises(errors.NotFound):
        await vers.status(unknown)
    assert calls("GET /vm/{id}/status", "4xx") - missing == 1
    assert unknown not in generate_latest(REGISTRY).decode()  # ids never become labels


async def test_retried_failures_count_every_attempt(vers: VersClient,
                                                    versim: VersSimulator) -> None:
    versim.set_faults(error_rate=1.0)
    failed, ok = calls("GET /vms", "5xx"), calls("GET /vms", "ok")
    with pytest.raises(errors.ServerError):
        await vers.list_vms()
    assert calls("GET /vms", "5xx") - failed == 4          # the call and its 3 retries
    assert calls("GET /vms", "ok") == ok

    versim.set_faults(error_rate=0, rate_limit_burst=1)     # one 429, then through
    limited, ok = calls("GET /vms", "4xx"), calls("GET /vms", "ok")
    await vers.list_vms()
    assert calls("GET /vms", "4xx") - limited == 1
    assert calls("GET /vms", "ok") - ok == 1


async def test_an_unreachable_platform_is_a_connection_error(versim: VersSimulator) -> None:
    nowhere = VersClient(f"http://127.0.0.1:{free_port()}", versim.api_key,
                         retry=RetryPolicy(retries=1, base_delay=0.01, max_delay=0.02))
    before = calls("GET /vms", "connection_error")
    async with nowhere:
        with pytest.raises(errors.ConnectionFailed):
            await nowhere.list_vms()
    assert calls("GET /vms", "connection_error") - before == 2
