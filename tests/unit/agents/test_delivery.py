"""An event stays unacknowledged, so uncommitted, until the record it produced is delivered
or the job handling it is done, and until the events before it in its partition are."""

from __future__ import annotations

import asyncio
import time

import faust
import pytest
from faust.types import Message

from agents.delivery import Acks

TOPIC = "wxstream.events.raw.v1"


def an_event(app: faust.App, offset: int = 7, partition: int = 0) -> faust.Event:
    message = Message(TOPIC, partition, offset, time.time(), 0, None, b"k", b"v", b"")
    message.incref()  # the stream's own reference, released when the agent takes the next event
    return faust.Event(app, b"k", b"v", None, message)


def handled(acks: Acks, event: faust.Event, *outputs: asyncio.Future) -> None:
    """As an agent handles `event`: hold it, hand over what it waits for, take the next one."""
    with acks.holding(event):
        for output in outputs:
            acks.until(event, output)
    event.ack()  # the agent moved on


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


def app() -> faust.App:
    return faust.App("delivery-test", store="memory://", web_enabled=False)


async def test_the_event_is_acknowledged_when_its_output_is_and_not_before():
    worker = app()
    acks, event = Acks(worker), an_event(worker)
    delivery = asyncio.get_running_loop().create_future()
    handled(acks, event, delivery)
    await settle()
    assert not event.message.acked

    delivery.set_result(None)
    await settle()
    assert event.message.acked
    assert worker.crash_reason is None


async def test_an_event_with_nothing_to_wait_for_is_acknowledged_with_the_agent_moving_on():
    worker = app()
    acks, event = Acks(worker), an_event(worker)
    handled(acks, event)
    assert event.message.acked


async def test_a_partition_is_acknowledged_in_offset_order():
    """Faust commits the first run of consecutive acknowledged offsets: one acknowledged
    ahead of an event in flight could be committed past it."""
    worker = app()
    acks = Acks(worker)
    first, second, third = (an_event(worker, offset) for offset in (0, 1, 2))
    elsewhere = an_event(worker, 0, partition=1)
    slow, fast = (asyncio.get_running_loop().create_future() for _ in range(2))
    handled(acks, first, slow)
    handled(acks, second, fast)
    handled(acks, third)  # a duplicate: nothing to wait for
    handled(acks, elsewhere)
    fast.set_result(None)
    await settle()
    assert [e.message.acked for e in (first, second, third, elsewhere)] == [False, False, False, True]

    slow.set_result(None)
    await settle()
    assert [e.message.acked for e in (first, second, third)] == [True, True, True]


async def test_an_output_that_fails_stops_the_worker_and_leaves_the_event_unacknowledged():
    worker = app()
    acks, event = Acks(worker), an_event(worker)
    delivery = asyncio.get_running_loop().create_future()
    handled(acks, event, delivery)

    failure = ConnectionError("broker gone")
    delivery.set_exception(failure)
    await settle()
    assert not event.message.acked
    assert worker.crash_reason is failure


async def test_a_job_that_fails_stops_the_worker_and_leaves_its_partition_unacknowledged():
    worker = app()
    acks = Acks(worker)
    event, later = an_event(worker, 0), an_event(worker, 1)
    failure = KeyError("a bug")

    async def job() -> None:
        raise failure

    handled(acks, event, asyncio.ensure_future(job()))
    handled(acks, later)
    await settle()
    assert not event.message.acked and not later.message.acked
    assert worker.crash_reason is failure


async def test_a_handler_that_raises_stops_the_worker_and_leaves_the_event_unacknowledged():
    worker = app()
    acks, event = Acks(worker), an_event(worker)
    failure = RuntimeError("a bug")
    with pytest.raises(RuntimeError):
        with acks.holding(event):
            raise failure
    event.ack()
    await settle()
    assert not event.message.acked
    assert worker.crash_reason is failure
