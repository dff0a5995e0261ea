"""Acknowledge an event only once what it set going is done (the records it produced
acknowledged by the broker, the job handling it finished), and a partition's events in
offset order.

Faust acks an event when its agent asks for the next one, and commits acked offsets after
flushing its producer. A send that fails still lets the flush finish, so an agent that
does not wait for its output could have the input committed and the output lost. Waiting
for each output (or each job) before taking the next event is safe, but it limits an
agent to one broker round trip, or one model call, per event. `Acks` keeps each event
unacknowledged until then instead: the agent goes on with the next events, and a send or
job that fails stops the worker, so that the restarted worker processes that event again
from the last commit (at least once; the agents' tables make the repeat harmless).

Order matters because of how Faust picks the offset to commit: the first run of
consecutive offsets among those acknowledged. It checks that run against the committed
offset only when there is one other than 0, and lets one missing offset pass. Events
acknowledged as their jobs finish, one user's before another's, would let Faust commit a
partition past an event still in flight, which a crash would then lose. `Acks` hands a
partition's acknowledgements to Faust in offset order, so that the run always starts
right after the committed offset.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Awaitable, Callable, Iterator

import faust
from faust.types import TP, Message

__all__ = ("Acks",)

log = logging.getLogger("wxstream.agents.delivery")


@dataclass(eq=False, slots=True)
class _Held:
    event: faust.types.EventT
    pending: int = 1  # the handler itself, then one per output or job not yet done


class Acks:
    """Acknowledges the events of the agents that hold them through it, each partition's in
    offset order. Every event of such an agent goes through `holding`, duplicates and
    dead letters too: one acknowledged by Faust alone could overtake one held here."""

    def __init__(self, app: faust.App) -> None:
        self._app = app
        self._queues: dict[TP, deque[_Held]] = {}
        self._held: dict[Message, _Held] = {}
        self._crashing: set[asyncio.Task] = set()  # keeps the crash tasks referenced until they ran

    @contextmanager
    def holding(self, event: faust.types.EventT) -> Iterator[None]:
        """Hold `event` while its handler runs, then until whatever `until` was given for it
        is done. A handler that raises stops the worker, like a failed output or job."""
        message = event.message
        message.incref()
        held = self._held[message] = _Held(event)
        self._queues.setdefault(message.tp, deque()).append(held)
        try:
            yield
        except Exception as exc:
            self._fail(held, exc)
            raise
        self._count_down(held)

    async def handle_each(
        self, stream: faust.StreamT, handle: Callable[[faust.types.EventT], Awaitable[None]]
    ) -> None:
        """An agent's loop: every event of `stream` through `handle`, held meanwhile."""
        async for event in stream.events():
            with self.holding(event):
                await handle(event)

    def until(self, event: faust.types.EventT, done: asyncio.Future) -> None:
        """Keep `event` (held) unacknowledged until `done` (what `topic.send()` returned, or
        the task of the job handling the event) has finished; stop the worker if it failed."""
        held = self._held[event.message]
        held.pending += 1
        done.add_done_callback(partial(self._finished, held))

    def _finished(self, held: _Held, future: asyncio.Future) -> None:
        failure = asyncio.CancelledError("cancelled") if future.cancelled() else future.exception()
        if failure is None:
            self._count_down(held)
        else:
            self._fail(held, failure)

    def _fail(self, held: _Held, failure: BaseException) -> None:
        """Leave the event unacknowledged, so its partition uncommitted from there on, and
        stop the worker: the restarted one processes the event again."""
        message = held.event.message
        log.error(
            "%s[%d]@%d was not handled to the end (%r): stopping the worker, which processes it again after a restart",
            message.topic,
            message.partition,
            message.offset,
            failure,
            exc_info=failure,
        )
        task = asyncio.get_running_loop().create_task(self._app.crash(failure))
        self._crashing.add(task)
        task.add_done_callback(self._crashing.discard)

    def _count_down(self, held: _Held) -> None:
        held.pending -= 1
        queue = self._queues[held.event.message.tp]
        while queue and queue[0].pending == 0:
            done = queue.popleft()
            del self._held[done.event.message]
            done.event.ack()
