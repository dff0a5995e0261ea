"""Acknowledge an event only once the record it produced is acknowledged by the broker.

Faust acks an event when its agent asks for the next one, and commits acked offsets after
flushing its producer. A send that fails still lets the flush finish, so an agent that
does not wait for its output could have the input committed and the output lost. Waiting
for each output before taking the next event is safe, but it limits an agent to one
broker round trip per event. `ack_when_delivered` keeps the event unacknowledged until
its output is acknowledged instead: the agent goes on with the next events, Faust commits
no further than the oldest event whose output is still in flight, and a send that fails
stops the worker, so that the restarted worker processes that event again from the last
commit (at least once; the agents' tables make the repeat harmless).
"""

from __future__ import annotations

import asyncio
import logging

import faust

__all__ = ("ack_when_delivered",)

log = logging.getLogger("wxstream.agents.delivery")

_crashing: set[asyncio.Task] = set()  # keeps the crash tasks referenced until they ran


def ack_when_delivered(app: faust.App, event: faust.types.EventT, delivery: asyncio.Future) -> None:
    """Hold `event` unacknowledged until `delivery` (what `topic.send()` returned) is done."""
    message = event.message
    message.incref()

    def delivered(future: asyncio.Future) -> None:
        failure = asyncio.CancelledError("send cancelled") if future.cancelled() else future.exception()
        if failure is None:
            event.ack()
            return
        log.error(
            "output of %s[%d]@%d was not delivered (%r): stopping the worker, which processes it again after a restart",
            message.topic,
            message.partition,
            message.offset,
            failure,
        )
        task = asyncio.get_running_loop().create_task(app.crash(failure))
        _crashing.add(task)
        task.add_done_callback(_crashing.discard)

    delivery.add_done_callback(delivered)
