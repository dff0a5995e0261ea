"""Acknowledge an event only once what it set going is done: the record it produced
acknowledged by the broker, or the job handling it finished.

Faust acks an event when its agent asks for the next one, and commits acked offsets after
flushing its producer. A send that fails still lets the flush finish, so an agent that
does not wait for its output could have the input committed and the output lost. Waiting
for each output (or each job) before taking the next event is safe, but it limits an
agent to one broker round trip, or one model call, per event. `ack_when_done` keeps the
event unacknowledged until then instead: the agent goes on with the next events, Faust
commits no further than the oldest event still in flight, and a send or job that fails
stops the worker, so that the restarted worker processes that event again from the last
commit (at least once; the agents' tables make the repeat harmless).
"""

from __future__ import annotations

import asyncio
import logging

import faust

__all__ = ("ack_when_done",)

log = logging.getLogger("wxstream.agents.delivery")

_crashing: set[asyncio.Task] = set()  # keeps the crash tasks referenced until they ran


def ack_when_done(app: faust.App, event: faust.types.EventT, done: asyncio.Future) -> None:
    """Hold `event` unacknowledged until `done` (what `topic.send()` returned, or the task
    of the job handling the event) has finished; stop the worker if it failed."""
    message = event.message
    message.incref()

    def finished(future: asyncio.Future) -> None:
        failure = asyncio.CancelledError("cancelled") if future.cancelled() else future.exception()
        if failure is None:
            event.ack()
            return
        log.error(
            "%s[%d]@%d was not handled to the end (%r): stopping the worker, which processes it again after a restart",
            message.topic,
            message.partition,
            message.offset,
            failure,
            exc_info=failure,
        )
        task = asyncio.get_running_loop().create_task(app.crash(failure))
        _crashing.add(task)
        task.add_done_callback(_crashing.discard)

    done.add_done_callback(finished)
