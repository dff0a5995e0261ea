"""raw events -> clean events: drop WeChat's retries and replays, publish the rest once.

At least once in, exactly once out for each dedupe key: a key is recorded in the `seen`
table (changelogged) in the same step that publishes it.
"""

from __future__ import annotations

import logging
import time

import faust

from app.topics import CLEAN_SCHEMA, CleanEvent, RawEvent, Topics

log = logging.getLogger("wxstream.agents.dedupe")


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
        event_time=int(fields.get("CreateTime") or 0),
        ingest_time=raw.received_at if raw.received_at else now,
    )


def install(app: faust.App, topics: Topics, seen: faust.Table) -> faust.types.AgentT:
    @app.agent(topics.raw, name="wxstream.dedupe")
    async def dedupe(stream: faust.StreamT[RawEvent]) -> None:
        async for key, raw in stream.items():
            seen_key = f"{raw.account}:{raw.dedupe_key}"
            if seen_key in seen:
                log.debug("dropped retry %s", seen_key)
                continue
            seen[seen_key] = raw.received_at
            await topics.clean.send(key=key, value=clean_event(raw, time.time()))

    return dedupe
