"""Guards against the embedded broker's wrong ListOffsets answer for multi-record batches.

Both tests fail when `Settings.one_record_batches` is switched off against the embedded
broker: the first sees a wrong end offset, the second a table that lost rows when Faust
restored it from its changelog.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from app.ingress.publisher import RawEventPublisher
from app.kafka_admin import ensure_topics
from app.topics import CLEAN_EVENTS, RAW_EVENTS
from tests.integration.kafka_helpers import end_offsets, publish_all, raw_text_event, read_topic

pytestmark = pytest.mark.integration

USERS = [f"o_guard_{i}" for i in range(8)]


def events(first_msg_id: int, count: int):
    return [raw_text_event("demo", USERS[i % len(USERS)], first_msg_id + i) for i in range(count)]


async def test_end_offsets_are_exact_for_concurrently_published_events(stack_settings, tmp_path):
    from app.embedded.broker import start_broker

    broker, bootstrap = start_broker(tmp_path / "logs")
    try:
        ensure_topics(stack_settings, bootstrap)
        publisher = RawEventPublisher(replace(stack_settings, produce_timeout_s=30), bootstrap)
        await publisher.start()
        try:
            await publish_all(publisher, events(1, 500))
        finally:
            await publisher.stop()
        assert await end_offsets(bootstrap, RAW_EVENTS.name) == 500
    finally:
        broker.stop()


async def test_table_is_fully_restored_after_worker_restart_with_local_state_wiped(start_stack):
    """Replays after the restart must all be recognised as duplicates: the `seen` table has
    to come back complete from its changelog alone.

    The worker works through a backlog with producers lingering, as a throughput-tuned
    deployment does after any pause: without the workaround its changelog batches then
    certainly hold several records.
    """
    stack = start_stack(kafka_linger_ms=20)
    settings = stack.child_settings
    publisher = RawEventPublisher(replace(settings, produce_timeout_s=30), settings.kafka_url)
    await publisher.start()
    try:
        first = events(1, 400)
        stack.stop_worker()
        await publish_all(publisher, first)
        stack.start_worker()
        await read_topic(settings.kafka_url, CLEAN_EVENTS.name, lambda r: len(r) >= len(first))

        stack.stop_worker()
        stack.start_worker(wipe_state=True)

        sentinels = [raw_text_event("demo", user, 10_000 + i) for i, user in enumerate(USERS)]
        await publish_all(publisher, first)  # WeChat retries / replays of everything
        for sentinel in sentinels:  # one new message per user, after that user's replays
            await publisher.publish(sentinel)
    finally:
        await publisher.stop()

    wanted = {s.dedupe_key for s in sentinels}
    clean = await read_topic(
        settings.kafka_url, CLEAN_EVENTS.name, lambda r: wanted <= {_dedupe_key(x) for x in r}, timeout=90
    )
    counts = Counter(_dedupe_key(record) for record in clean)
    duplicates = {key: n for key, n in counts.items() if n > 1}
    assert duplicates == {}, f"{len(duplicates)} replays passed dedupe after restore"
    assert len(clean) == len(first) + len(sentinels)


def _dedupe_key(record) -> str:
    import json

    return json.loads(record.value)["dedupe_key"]
