"""raw events -> clean events: drop WeChat's retries and replays, publish the rest once,
and hand each to the conversation (agents/conversation.py).

Raw records are read as bytes and decoded here, so that a record that is not a valid
`RawEvent` goes to the dead-letter topic with the reason instead of stopping the
partition. A raw record is acknowledged, so committed, once its clean event is
acknowledged by the broker and its conversation job is done, and after the records
before it in its partition (agents/delivery.py).
"""

from __future__ import annotations

import json
import time

import faust

from agents.conversation import Conversation
from agents.deadletters import send_to_dead_letters
from agents.delivery import Acks
from agents.metrics import AgentMetrics
from app.settings import Settings
from app.topics import CLEAN_SCHEMA, CleanEvent, RawEvent, Topics, user_key


class PoisonEvent(ValueError):
    """A raw record that cannot become a clean event."""


def decode_raw(value: bytes) -> RawEvent:
    try:
        data = json.loads(value)
    except ValueError as exc:
        raise PoisonEvent(f"undecodable: {type(exc).__name__}: {exc}") from None
    if not isinstance(data, dict):
        raise PoisonEvent(f"schema: expected a JSON object, got {type(data).__name__}")
    try:
        raw = RawEvent.from_data(data)
    except (TypeError, ValueError) as exc:
        raise PoisonEvent(f"schema: {exc}") from None
    problem = raw.problem()
    if problem is not None:
        raise PoisonEvent(f"schema: {problem}")
    return raw


def clean_event(raw: RawEvent, now: float) -> CleanEvent:
    """The data teams' view of an accepted callback."""
    fields = raw.fields
    return CleanEvent(
        schema=CLEAN_SCHEMA,
        account=raw.account,
        openid=raw.openid,
        msg_type=raw.msg_type,
        event=fields.get("Event", ""),
        dedupe_key=raw.dedupe_key,
        fields=fields,
        event_time=int(fields["CreateTime"]),
        ingest_time=raw.received_at or now,
    )


def record_position(event: faust.types.EventT) -> str:
    """`<partition>@<offset>` of the raw record behind `event`."""
    return f"{event.message.partition}@{event.message.offset}"


def install(
    app: faust.App,
    topics: Topics,
    seen: faust.types.tables.WindowWrapperT,
    settings: Settings,
    metrics: AgentMetrics,
    conversation: Conversation,
    acks: Acks,
) -> faust.types.AgentT:
    ttl = settings.dedupe_ttl_s

    async def handle(event: faust.types.EventT) -> None:
        try:
            raw = decode_raw(event.value)
        except PoisonEvent as exc:
            return await send_to_dead_letters(topics, metrics, event, str(exc))
        seen_key = f"{raw.account}:{raw.dedupe_key}"
        window = seen[seen_key]
        first = window.current() or window.delta(ttl)
        here = record_position(event)
        if first and first != here:
            metrics.events.labels("dedupe", "duplicate").inc()
            return
        # The key is marked with this record's position, so that this record, processed
        # again after a crash, is published again (its clean event may never have
        # reached the broker; the clean topic is at-least-once, keyed by dedupe_key
        # for idempotent consumers) and answered again (the conversation finds its
        # answer in the session), while every other copy of it is a duplicate.
        clean = clean_event(raw, time.time())
        acks.until(event, await topics.clean.send(key=event.key, value=clean))
        seen[seen_key] = here
        metrics.events.labels("dedupe", "published").inc()
        # Unacknowledged until the job is done too; if the job fails, the worker stops.
        acks.until(event, await conversation.answer(user_key(raw.account, raw.openid), clean))

    @app.agent(topics.raw, name="wxstream.dedupe")
    async def dedupe(stream: faust.StreamT[bytes]) -> None:
        try:
            await acks.handle_each(stream, handle)
        finally:
            await conversation.close()

    return dedupe
