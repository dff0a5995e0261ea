"""Concurrency for an agent whose events must stay in order per key.

A Faust agent handles one event at a time, so each model call left the conversation
agent waiting, and the worker woke up for every event alone. Faust's own `concurrency`
spreads a partition's events over several actors and loses the order of one user's
messages. `KeyedTasks` runs a job per event as a task of its own, up to `limit` at a
time, and starts a key's job only once the previous job of that key is done: one user's
messages are answered in order while other users' are answered meanwhile.

A job takes one of the `limit` slots only once it may start: jobs queued behind their
key's previous job take none, so a burst from one user cannot fill the slots while it
waits and stall everyone else. The jobs not yet finished, queued or running, are bounded
by `backlog`; that bound is the agent's backpressure.

A job runs in a copy of the agent's context at submit time, where Faust's
`current_event()` is the job's event: table reads and writes in it go to that event's
partition and windows as they would in the agent itself.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Hashable

__all__ = ("KeyedTasks",)


BACKLOG_PER_SLOT = 8  # default backlog: jobs not yet finished per slot


class KeyedTasks:
    def __init__(self, limit: int, backlog: int | None = None) -> None:
        backlog = limit * BACKLOG_PER_SLOT if backlog is None else backlog
        if not 1 <= limit <= backlog:
            raise ValueError(f"need 1 <= limit <= backlog, got limit {limit}, backlog {backlog}")
        self._slots = asyncio.Semaphore(limit)  # jobs running
        self._room = asyncio.Semaphore(backlog)  # jobs not finished
        self._last: dict[Hashable, asyncio.Task] = {}  # each key's newest job
        self._running: set[asyncio.Task] = set()

    @property
    def running(self) -> int:
        return len(self._running)

    async def submit(self, key: Hashable, job: Awaitable[None]) -> asyncio.Task[None]:
        """Start `job` after the jobs submitted before for `key`, and return its task.
        Waits while `backlog` jobs are unfinished: the agent takes no more events then
        (backpressure). A job that fails does not hold up the next one of its key."""
        await self._room.acquire()
        task = asyncio.ensure_future(self._after(self._last.get(key), job))
        self._last[key] = task
        self._running.add(task)
        task.add_done_callback(lambda done: self._finished(key, done))
        return task

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until the jobs submitted so far are done, at most `timeout` seconds."""
        if self._running:
            await asyncio.wait(set(self._running), timeout=timeout)

    async def _after(self, before: asyncio.Task | None, job: Awaitable[None]) -> None:
        if before is not None:
            await asyncio.wait([before])  # its outcome is its own
        async with self._slots:
            await job

    def _finished(self, key: Hashable, task: asyncio.Task) -> None:
        self._room.release()
        self._running.discard(task)
        if self._last.get(key) is task:
            del self._last[key]
