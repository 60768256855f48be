"""Fair sharing between namespaces: the order waiters are served in, and the three users."""

from __future__ import annotations

import asyncio

from reef_operator.fairshare import FairSlots, RoundRobin, acting_for
from reef_operator.lieutenants.startgate import StartGate
from reef_operator.providers.ratelimit import RateLimiter


def served(order: RoundRobin[str]) -> list[str]:
    out = []
    while (waiter := order.next()) is not None:
        out.append(waiter)
    return out


def test_a_burst_takes_turns_with_a_lone_waiter() -> None:
    order: RoundRobin[str] = RoundRobin()
    for i in range(50):
        order.arrive("burst", f"burst-{i}")
    order.arrive("lone", "lone-0")
    result = served(order)
    assert result.index("lone-0") == 1
    assert [w for w in result if w.startswith("burst")] == [f"burst-{i}" for i in range(50)]


def test_turns_rotate_across_tenants_fifo_within_each() -> None:
    order: RoundRobin[str] = RoundRobin()
    for waiter in ["a1", "a2", "a3", "b1", "b2", "c1"]:
        order.arrive(waiter[0], waiter)
    assert served(order) == ["a1", "b1", "c1", "a2", "b2", "a3"]
    assert len(order) == 0


def test_a_tenant_that_returns_joins_the_end_of_the_turns() -> None:
    order: RoundRobin[str] = RoundRobin()
    for waiter in ["a1", "a2", "b1"]:
        order.arrive(waiter[0], waiter)
    assert order.next() == "a1"
    order.arrive("c", "c1")
    assert served(order) == ["b1", "a2", "c1"]


def test_a_waiter_that_leaves_is_not_served() -> None:
    order: RoundRobin[str] = RoundRobin()
    for waiter in ["a1", "a2", "b1"]:
        order.arrive(waiter[0], waiter)
    order.leave("b", "b1")
    assert len(order) == 2
    assert served(order) == ["a1", "a2"]


async def _admitted(slots: FairSlots, arrivals: list[tuple[str, str]]) -> list[str]:
    """Hold every slot, queue `arrivals`, then release one at a time: the order let in."""
    for _ in range(slots.limit):
        await slots.acquire("holder")
    admitted: list[str] = []

    async def wait(tenant: str, name: str) -> None:
        await slots.acquire(tenant)
        admitted.append(name)

    tasks = []
    for tenant, name in arrivals:
        tasks.append(asyncio.create_task(wait(tenant, name)))
        await asyncio.sleep(0)  # each one queues before the next arrives
    assert slots.waiting == len(arrivals)
    for _ in arrivals:
        slots.release()
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    return admitted


async def test_slots_admit_in_turns() -> None:
    arrivals = [("burst", f"burst-{i}") for i in range(5)] + [("lone", "lone")]
    assert await _admitted(FairSlots(2), arrivals) == [
        "burst-0", "lone", "burst-1", "burst-2", "burst-3", "burst-4"]


async def test_slots_hold_at_most_the_limit_and_free_when_nobody_waits() -> None:
    slots = FairSlots(2)
    await slots.acquire("a")
    await slots.acquire("a")
    assert slots.held == 2
    third = asyncio.create_task(slots.acquire("a"))
    await asyncio.sleep(0)
    assert not third.done() and slots.waiting == 1
    slots.release()
    await third
    assert slots.held == 2
    slots.release()
    slots.release()
    assert slots.held == 0 and slots.waiting == 0


async def test_a_cancelled_waiter_neither_holds_nor_loses_a_slot() -> None:
    slots = FairSlots(1)
    await slots.acquire("a")
    gone = asyncio.create_task(slots.acquire("b"))
    after = asyncio.create_task(slots.acquire("c"))
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    slots.release()
    await after
    assert slots.held == 1 and slots.waiting == 0
    slots.release()
    assert slots.held == 0


async def test_the_tenant_comes_from_the_context_by_default() -> None:
    slots = FairSlots(1)
    await slots.acquire()
    admitted: list[str] = []

    async def wait(tenant: str, name: str) -> None:
        with acting_for(tenant):
            async with slots.slot():
                admitted.append(name)

    tasks = []
    for tenant, name in [("a", "a1"), ("a", "a2"), ("b", "b1")]:
        tasks.append(asyncio.create_task(wait(tenant, name)))
        await asyncio.sleep(0)
    slots.release()
    await asyncio.gather(*tasks)
    assert admitted == ["a1", "b1", "a2"]


async def test_the_start_gate_takes_turns_by_namespace() -> None:
    gate = StartGate(1)
    await gate.enter("holder")
    started: list[str] = []

    async def start(namespace: str, name: str) -> None:
        await gate.enter(namespace)
        started.append(name)
        gate.leave()

    tasks = []
    for namespace, name in [("burst", "b0"), ("burst", "b1"), ("burst", "b2"), ("lone", "l0")]:
        tasks.append(asyncio.create_task(start(namespace, name)))
        await asyncio.sleep(0)
    assert gate.waiting == 4 and gate.starting == 1
    gate.leave()
    await asyncio.gather(*tasks)
    assert started == ["b0", "l0", "b1", "b2"]
    assert gate.starting == 0


async def test_the_platform_rate_limit_takes_turns_by_namespace() -> None:
    # A slow bucket (one token per 10 ms, none to spare) makes every caller queue.
    limiter = RateLimiter(rate=100, burst=1)
    await limiter.acquire()
    called: list[str] = []

    async def call(namespace: str, name: str) -> None:
        with acting_for(namespace):
            async with limiter:
                called.append(name)

    tasks = []
    for namespace, name in [("burst", "b0"), ("burst", "b1"), ("burst", "b2"), ("lone", "l0")]:
        tasks.append(asyncio.create_task(call(namespace, name)))
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    # b0 took the bucket at once; the rest queued behind it, in turns.
    assert called == ["b0", "b1", "l0", "b2"]
