"""An event stays unacknowledged, so uncommitted, until the record it produced is delivered
or the job handling it is done."""

from __future__ import annotations

import asyncio
import time

import faust
from faust.types import Message

from agents.delivery import ack_when_done


def an_event(app: faust.App) -> faust.Event:
    message = Message("wxstream.events.raw.v1", 0, 7, time.time(), 0, None, b"k", b"v", b"")
    message.incref()  # the stream's own reference, released when the agent takes the next event
    return faust.Event(app, b"k", b"v", None, message)


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_the_event_is_acknowledged_when_its_output_is_and_not_before():
    app = faust.App("delivery-test", store="memory://", web_enabled=False)
    event = an_event(app)
    delivery = asyncio.get_running_loop().create_future()
    ack_when_done(app, event, delivery)
    event.ack()  # the agent moved on
    await settle()
    assert not event.message.acked

    delivery.set_result(None)
    await settle()
    assert event.message.acked
    assert app.crash_reason is None


async def test_an_output_that_fails_stops_the_worker_and_leaves_the_event_unacknowledged():
    app = faust.App("delivery-test", store="memory://", web_enabled=False)
    event = an_event(app)
    delivery = asyncio.get_running_loop().create_future()
    ack_when_done(app, event, delivery)
    event.ack()

    failure = ConnectionError("broker gone")
    delivery.set_exception(failure)
    await settle()
    assert not event.message.acked
    assert app.crash_reason is failure


async def test_a_job_that_fails_stops_the_worker_and_leaves_the_event_unacknowledged():
    app = faust.App("delivery-test", store="memory://", web_enabled=False)
    event = an_event(app)
    failure = KeyError("a bug")

    async def job() -> None:
        raise failure

    ack_when_done(app, event, asyncio.ensure_future(job()))
    event.ack()
    await settle()
    assert not event.message.acked
    assert app.crash_reason is failure
