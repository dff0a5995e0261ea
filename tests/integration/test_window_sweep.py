"""A worker restarted on its local RocksDB state deletes the expired windows its earlier
run left there, which Faust's own cleanup never purges."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace

import aiohttp
import pytest

from app.ingress.publisher import RawEventPublisher
from app.topics import REPLIES
from tests.integration.kafka_helpers import publish_all, raw_text_event, read_topic
from tests.integration.stack_helpers import isolated_settings, running_stack

pytestmark = pytest.mark.integration

TTL_S = 5.0  # seen windows expire 2 x TTL after they are written


async def seen_keys(stack) -> float:
    """The seen table's keys on the worker, as its /metrics says (refreshed every 5 s)."""
    async with aiohttp.ClientSession() as session:
        async with session.get(stack.child_settings.web_url + "/metrics") as response:
            text = await response.text()
    for line in text.splitlines():
        if line.startswith('wxstream_faust_table_keys{table="seen-v2"}'):
            return float(line.split()[-1])
    return -1.0


async def test_expired_windows_from_before_a_restart_are_deleted(tmp_path):
    settings = isolated_settings(tmp_path / "data", dedupe_ttl_s=TTL_S, window_sweep_interval_s=1.0)
    with running_stack(settings) as stack:
        child = stack.child_settings
        publisher = RawEventPublisher(replace(child, produce_timeout_s=30), child.kafka_url)
        await publisher.start()
        try:
            ids = range(int(time.time() * 1000), int(time.time() * 1000) + 6)
            events = [raw_text_event("demo", f"o_sweep_{i % 3}", i, "hi") for i in ids]
            await publish_all(publisher, events)
        finally:
            await publisher.stop()
        keys = {e.dedupe_key for e in events}
        await read_topic(child.kafka_url, REPLIES.name, lambda rs: keys <= {json.loads(r.value)["in_reply_to"] for r in rs}, 60)
        stack.stop_worker()  # before the windows expire: they stay in the local store
        written = time.monotonic()

        stack.start_worker()
        await asyncio.sleep(max(0.0, 2 * TTL_S + 1 - (time.monotonic() - written)))
        deadline = time.monotonic() + 30
        while (left := await seen_keys(stack)) != 0 and time.monotonic() < deadline:
            await asyncio.sleep(1)
        assert left == 0, f"{left:g} expired seen windows left in the local store"
