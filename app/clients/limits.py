"""Bounded concurrency toward the model, in total and per account, with load shedding.

A request takes its account's slot first, then one of the shared ones, so an account at
its own limit queues on its own semaphore without holding shared slots. Rather than queue
past WeChat's deadline, a request is shed (`Shed`) at once when `max_waiting` requests
already wait, or after waiting `max_wait_s` (or its own budget, if shorter).
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import AsyncIterator

__all__ = ("ConcurrencyLimiter", "Shed")


class Shed(Exception):
    """No slot for this request: `reason` is `queue_full` or `wait_timeout`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConcurrencyLimiter:
    """Semaphores are created on first use, inside the running event loop."""

    def __init__(self, max_in_flight: int, max_per_account: int, max_waiting: int, max_wait_s: float) -> None:
        if max_in_flight < 1 or max_per_account < 1:
            raise ValueError("concurrency limits must be >= 1")
        self.max_in_flight = max_in_flight
        self.max_per_account = min(max_per_account, max_in_flight)
        self.max_waiting = max_waiting
        self.max_wait_s = max_wait_s
        self.in_flight = 0
        self.waiting = 0
        self._total: asyncio.Semaphore | None = None
        self._accounts: dict[str, asyncio.Semaphore] = {}

    @asynccontextmanager
    async def slot(self, account: str, budget_s: float) -> AsyncIterator[None]:
        """Hold one slot for `account` for the body of the `async with`; raises Shed."""
        if self._total is None:
            self._total = asyncio.Semaphore(self.max_in_flight)
        total = self._total
        own = self._accounts.get(account)
        if own is None:
            own = self._accounts[account] = asyncio.Semaphore(self.max_per_account)
        if own.locked() or total.locked():
            await self._wait(own, total, min(self.max_wait_s, budget_s))
        else:  # a free slot: taken without yielding to the loop
            await own.acquire()
            await total.acquire()
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            total.release()
            own.release()

    async def _wait(self, own: asyncio.Semaphore, total: asyncio.Semaphore, wait_s: float) -> None:
        if self.waiting >= self.max_waiting:
            raise Shed("queue_full")
        if wait_s <= 0:
            raise Shed("wait_timeout")
        self.waiting += 1
        holds_own = False
        try:
            async with asyncio.timeout(wait_s):
                await own.acquire()
                holds_own = True
                await total.acquire()
        except TimeoutError:
            if holds_own:
                own.release()
            raise Shed("wait_timeout") from None
        except BaseException:
            if holds_own:
                own.release()
            raise
        finally:
            self.waiting -= 1
