"""Bounded concurrency toward the model, in total and per account, and load shedding."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import AsyncIterator

import pytest

from app.clients.limits import ConcurrencyLimiter, Shed, Slots


@asynccontextmanager
async def slot(limiter: ConcurrencyLimiter, account: str, budget: float) -> AsyncIterator[None]:
    await limiter.take(account, budget)
    try:
        yield
    finally:
        limiter.give(account)


async def hold(limiter: ConcurrencyLimiter, account: str, release: asyncio.Event, budget: float = 10.0) -> None:
    async with slot(limiter, account, budget):
        await release.wait()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_free_slots_are_taken_without_waiting():
    limiter = ConcurrencyLimiter(max_in_flight=2, max_per_account=2, max_waiting=0, max_wait_s=0)
    async with slot(limiter, "a", 1.0):
        async with slot(limiter, "a", 1.0):
            assert limiter.in_flight == 2 and limiter.waiting == 0
    assert limiter.in_flight == 0


async def test_total_limit_holds_across_accounts():
    limiter = ConcurrencyLimiter(max_in_flight=3, max_per_account=3, max_waiting=100, max_wait_s=5)
    release = asyncio.Event()
    tasks = [asyncio.create_task(hold(limiter, f"acct{i}", release)) for i in range(5)]
    await settle()
    assert (limiter.in_flight, limiter.waiting) == (3, 2)
    release.set()
    await asyncio.gather(*tasks)
    assert (limiter.in_flight, limiter.waiting) == (0, 0)


async def test_an_account_at_its_limit_does_not_hold_shared_slots_while_it_waits():
    limiter = ConcurrencyLimiter(max_in_flight=3, max_per_account=1, max_waiting=100, max_wait_s=5)
    release = asyncio.Event()
    flood = [asyncio.create_task(hold(limiter, "flood", release)) for _ in range(5)]
    await settle()
    assert limiter.in_flight == 1 and limiter.waiting == 4
    async with slot(limiter, "quiet", 0.5):  # served at once: two shared slots are free
        assert limiter.in_flight == 2
    release.set()
    await asyncio.gather(*flood)


async def test_shed_at_once_when_too_many_wait():
    limiter = ConcurrencyLimiter(max_in_flight=1, max_per_account=1, max_waiting=2, max_wait_s=5)
    release = asyncio.Event()
    tasks = [asyncio.create_task(hold(limiter, "a", release)) for _ in range(3)]
    await settle()
    assert limiter.waiting == 2
    started = asyncio.get_running_loop().time()
    with pytest.raises(Shed) as shed:
        async with slot(limiter, "b", 5):
            pass
    assert shed.value.reason == "queue_full"
    assert asyncio.get_running_loop().time() - started < 0.05
    release.set()
    await asyncio.gather(*tasks)
    assert (limiter.in_flight, limiter.waiting) == (0, 0)


async def test_shed_after_waiting_too_long():
    limiter = ConcurrencyLimiter(max_in_flight=1, max_per_account=1, max_waiting=10, max_wait_s=0.05)
    release = asyncio.Event()
    busy = asyncio.create_task(hold(limiter, "a", release))
    await settle()
    started = asyncio.get_running_loop().time()
    with pytest.raises(Shed) as shed:
        async with slot(limiter, "a", 10):
            pass
    assert shed.value.reason == "wait_timeout"
    assert 0.04 < asyncio.get_running_loop().time() - started < 0.5
    assert (limiter.in_flight, limiter.waiting) == (1, 0)
    release.set()
    await busy


async def test_the_wait_is_bounded_by_the_requests_own_budget():
    limiter = ConcurrencyLimiter(max_in_flight=1, max_per_account=1, max_waiting=10, max_wait_s=10)
    release = asyncio.Event()
    busy = asyncio.create_task(hold(limiter, "a", release))
    await settle()
    started = asyncio.get_running_loop().time()
    with pytest.raises(Shed):
        async with slot(limiter, "b", 0.05):
            pass
    assert asyncio.get_running_loop().time() - started < 0.5
    release.set()
    await busy


async def test_zero_wait_sheds_whenever_no_slot_is_free():
    limiter = ConcurrencyLimiter(max_in_flight=1, max_per_account=1, max_waiting=10, max_wait_s=0)
    release = asyncio.Event()
    busy = asyncio.create_task(hold(limiter, "a", release))
    await settle()
    with pytest.raises(Shed, match="wait_timeout"):
        async with slot(limiter, "b", 10):
            pass
    release.set()
    await busy


async def test_a_timed_out_waiter_gives_back_its_account_slot():
    # It got its account's slot but not a shared one: the account slot must be returned.
    limiter = ConcurrencyLimiter(max_in_flight=1, max_per_account=1, max_waiting=10, max_wait_s=0.05)
    release = asyncio.Event()
    busy = asyncio.create_task(hold(limiter, "other", release))
    await settle()
    with pytest.raises(Shed):
        async with slot(limiter, "a", 10):
            pass
    release.set()
    await busy
    async with slot(limiter, "a", 0.01):  # free again, at once
        assert limiter.in_flight == 1


async def test_a_cancelled_waiter_leaves_no_trace():
    limiter = ConcurrencyLimiter(max_in_flight=1, max_per_account=1, max_waiting=10, max_wait_s=10)
    release = asyncio.Event()
    busy = asyncio.create_task(hold(limiter, "a", release))
    await settle()
    waiter = asyncio.create_task(hold(limiter, "a", asyncio.Event()))
    await settle()
    assert limiter.waiting == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert limiter.waiting == 0
    release.set()
    await busy
    async with slot(limiter, "a", 0.01):
        pass


async def test_an_error_in_the_body_releases_the_slot():
    limiter = ConcurrencyLimiter(max_in_flight=1, max_per_account=1, max_waiting=0, max_wait_s=0)
    with pytest.raises(RuntimeError):
        async with slot(limiter, "a", 1):
            raise RuntimeError("model failed")
    async with slot(limiter, "a", 1):
        assert limiter.in_flight == 1


def test_limits_must_be_positive():
    with pytest.raises(ValueError):
        ConcurrencyLimiter(0, 1, 1, 1)
    with pytest.raises(ValueError):
        ConcurrencyLimiter(1, 0, 1, 1)


def test_the_account_limit_is_capped_by_the_total():
    assert ConcurrencyLimiter(4, 10, 1, 1).max_per_account == 4


# --- the uncontended path, and the slots underneath --------------------------------------


async def test_a_free_slot_is_taken_without_awaiting_and_given_back():
    limiter = ConcurrencyLimiter(max_in_flight=2, max_per_account=1, max_waiting=10, max_wait_s=1)
    assert limiter.try_take("a") and limiter.in_flight == 1
    assert not limiter.try_take("a"), "the account's one slot is taken"
    assert limiter.try_take("b")
    assert not limiter.try_take("c"), "both shared slots are taken"
    assert limiter.in_flight == 2
    limiter.give("a")
    limiter.give("b")
    assert limiter.in_flight == 0 and limiter.try_take("c")


async def test_slots_go_to_waiters_in_arrival_order():
    slots = Slots(1)
    await slots.take()
    served: list[int] = []

    async def wait(i: int) -> None:
        await slots.take()
        served.append(i)

    waiters = [asyncio.create_task(wait(i)) for i in range(3)]
    await settle()
    for _ in range(3):
        slots.give()
        assert not slots.available(), "a slot given back goes to the first in line, not to a newcomer"
        await settle()
    assert served == [0, 1, 2]
    await asyncio.gather(*waiters)
    assert slots.free == 0
    slots.give()
    assert slots.free == 1 and slots.available()


async def test_a_slot_handed_to_a_waiter_cancelled_meanwhile_goes_to_the_next():
    slots = Slots(1)
    await slots.take()
    first = asyncio.create_task(slots.take())
    second = asyncio.create_task(slots.take())
    await settle()
    slots.give()  # handed to `first`, which is cancelled before it runs again
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 1)
    assert slots.free == 0 and not slots.available()


async def test_a_cancelled_waiter_leaves_the_line():
    slots = Slots(1)
    await slots.take()
    waiter = asyncio.create_task(slots.take())
    await settle()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    slots.give()
    assert slots.free == 1 and slots.available()
