"""Bounded concurrency toward the model, in total and per account, with load shedding.

A request takes its account's slot first, then one of the shared ones, so an account at
its own limit queues for its own slots without holding shared ones. Rather than queue
past WeChat's deadline, a request is shed (`Shed`) at once when `max_waiting` requests
already wait, or after waiting `max_wait_s` (or its own budget, if shorter).
"""

from __future__ import annotations

import asyncio
from collections import deque
from contextlib import suppress

__all__ = ("ConcurrencyLimiter", "Shed", "Slots")


class Shed(Exception):
    """No slot for this request: `reason` is `queue_full` or `wait_timeout`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Slots:
    """A counting semaphore, first come first served, whose free slots can also be taken
    without awaiting: every model request passes here, and when nothing is contended it
    creates no coroutine and never yields to the event loop."""

    def __init__(self, count: int) -> None:
        self.free = count
        self._waiters: deque[asyncio.Future[None]] = deque()

    def available(self) -> bool:
        """Whether `take` would not wait: a slot is free and nobody is in line for one."""
        return self.free > 0 and not self._waiters

    async def take(self) -> None:
        if self.available():
            self.free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed a slot just as it was cancelled: the next one gets it
            else:
                with suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def give(self) -> None:
        """Returns a slot: straight to the first in line, if any."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1


class ConcurrencyLimiter:
    """Slots in total and per account. A request takes them with `try_take` or `take`
    and gives them back with `give`."""

    def __init__(self, max_in_flight: int, max_per_account: int, max_waiting: int, max_wait_s: float) -> None:
        if max_in_flight < 1 or max_per_account < 1:
            raise ValueError("concurrency limits must be >= 1")
        self.max_in_flight = max_in_flight
        self.max_per_account = min(max_per_account, max_in_flight)
        self.max_waiting = max_waiting
        self.max_wait_s = max_wait_s
        self.in_flight = 0
        self.waiting = 0
        self._total = Slots(self.max_in_flight)
        self._accounts: dict[str, Slots] = {}

    def _own(self, account: str) -> Slots:
        own = self._accounts.get(account)
        if own is None:
            own = self._accounts[account] = Slots(self.max_per_account)
        return own

    def try_take(self, account: str) -> bool:
        """Takes a slot of `account` and a shared one if both are free and nobody waits for
        them, without awaiting; False (and nothing taken) otherwise."""
        own, total = self._own(account), self._total
        if not (own.available() and total.available()):
            return False
        own.free -= 1
        total.free -= 1
        self.in_flight += 1
        return True

    async def take(self, account: str, budget_s: float) -> None:
        """Takes a slot of `account` and a shared one, waiting for them if need be, for at
        most `max_wait_s` or `budget_s`; raises Shed. Give them back with `give`."""
        if self.try_take(account):
            return
        own, total = self._own(account), self._total
        if self.waiting >= self.max_waiting:
            raise Shed("queue_full")
        wait_s = min(self.max_wait_s, budget_s)
        if wait_s <= 0:
            raise Shed("wait_timeout")
        self.waiting += 1
        holds_own = False
        try:
            async with asyncio.timeout(wait_s):
                await own.take()
                holds_own = True
                await total.take()
        except TimeoutError:
            if holds_own:
                own.give()
            raise Shed("wait_timeout") from None
        except BaseException:
            if holds_own:
                own.give()
            raise
        finally:
            self.waiting -= 1
        self.in_flight += 1

    def give(self, account: str) -> None:
        """Returns the slots that `try_take` or `take` took for `account`."""
        self.in_flight -= 1
        self._total.give()
        self._accounts[account].give()
