"""The dedupe agent in Faust's test context: raw records in, clean events or dead letters
out, and each clean event handed to the conversation (a stand-in that records them)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from agents import dedupe
from agents.delivery import Acks
from app.settings import Settings
from app.topics import CLEAN_EVENTS, CLEAN_SCHEMA, DEAD_LETTERS, RAW_EVENTS, CleanEvent, DeadLetter, user_key
from tables.seen import SEEN_TABLE, seen_table
from tests.unit.agents.faust_harness import AgentHarness

KEY = user_key("demo", "oUser")


def raw(msg_id: str = "1", **changes) -> bytes:
    value = {
        "account": "demo",
        "openid": "oUser",
        "msg_type": "text",
        "dedupe_key": f"msg:{msg_id}",
        "fields": {
            "FromUserName": "oUser",
            "CreateTime": "1714000000",
            "MsgType": "text",
            "Content": "hi",
            "MsgId": msg_id,
        },
        "received_at": 1714000001.5,
    }
    value.update(changes)
    return json.dumps(value).encode("utf-8")


class Conversation:
    """What the agent uses of agents.conversation.Conversation: keeps what it is handed,
    and finishes each job at once unless `hold` is set."""

    def __init__(self) -> None:
        self.handed: list[tuple[str, CleanEvent]] = []
        self.hold: asyncio.Future | None = None
        self.closed = False

    async def answer(self, key: str, event: CleanEvent) -> asyncio.Task[None]:
        self.handed.append((key, event))
        hold = self.hold
        return asyncio.ensure_future(asyncio.shield(hold) if hold is not None else asyncio.sleep(0))

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def conversation():
    return Conversation()


@pytest.fixture
async def harness(conversation):
    harness = AgentHarness(Settings(partitions=1))
    app, settings = harness.app, harness.settings
    agent = dedupe.install(app, harness.topics, seen_table(app, settings), settings, harness.metrics, conversation, Acks(app))
    async with harness.running(agent):
        yield harness
    assert conversation.closed, "the agent closes the conversation when it stops"


async def put(harness: AgentHarness, value: bytes, timestamp: float | None = None, offset: int | None = None) -> None:
    await harness.put(value, key=KEY, topic=RAW_EVENTS.name, timestamp=timestamp, offset=offset)


def counted(harness: AgentHarness, outcome: str) -> float:
    return harness.metric("wxstream_agent_events_total", agent="dedupe", outcome=outcome)


async def test_a_first_event_is_published_to_the_clean_topic(harness):
    await put(harness, raw("1"))

    [published] = harness.produced(CLEAN_EVENTS.name)
    assert published.key == KEY.encode()
    event = CleanEvent.loads(published.value)
    assert (event.schema, event.account, event.openid, event.dedupe_key) == (CLEAN_SCHEMA, "demo", "oUser", "msg:1")
    assert (event.event_time, event.ingest_time) == (1714000000, 1714000001.5)
    assert counted(harness, "published") == 1


async def test_each_published_event_is_handed_to_the_conversation_once(harness, conversation):
    await put(harness, raw("1"))
    await put(harness, raw("1", received_at=1714000006.5))  # a retry: not handed over
    await put(harness, b"not json")  # a dead letter: not handed over either
    await put(harness, raw("2"))

    assert [(key, event.dedupe_key) for key, event in conversation.handed] == [(KEY, "msg:1"), (KEY, "msg:2")]
    assert [event for _, event in conversation.handed] == harness.values(CLEAN_EVENTS.name, CleanEvent)


async def test_the_raw_record_is_acknowledged_only_once_its_conversation_job_is_done(harness, conversation):
    conversation.hold = asyncio.get_running_loop().create_future()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await put(harness, raw("1"))  # returns once the record is acknowledged

    conversation.hold.set_result(None)
    await put(harness, raw("2"))  # the held job done, the next record goes through


async def test_a_retry_of_the_same_message_is_dropped(harness):
    await put(harness, raw("1"))
    await put(harness, raw("1", received_at=1714000006.5))  # WeChat's retry, 5 s later
    await put(harness, raw("2"))

    assert [e.dedupe_key for e in harness.values(CLEAN_EVENTS.name, CleanEvent)] == ["msg:1", "msg:2"]
    assert counted(harness, "duplicate") == 1


async def test_the_same_record_processed_again_after_a_crash_is_published_again(harness):
    await put(harness, raw("1"))  # offset 0; its clean event may not have reached the broker
    await put(harness, raw("1", received_at=1714000006.5))  # offset 1: WeChat's retry
    await put(harness, raw("1"), offset=0)  # the restarted worker reads from the last commit
    await put(harness, raw("1", received_at=1714000006.5), offset=1)

    assert [e.dedupe_key for e in harness.values(CLEAN_EVENTS.name, CleanEvent)] == ["msg:1", "msg:1"]
    assert counted(harness, "duplicate") == 2


async def test_a_repeat_is_a_duplicate_within_the_ttl_and_not_after(harness):
    ttl, now = harness.settings.dedupe_ttl_s, time.time()
    await put(harness, raw("1"), timestamp=now)
    await put(harness, raw("1"), timestamp=now + ttl)  # the next window: found in the one before
    await put(harness, raw("1"), timestamp=now + 2 * ttl + 1)  # past the TTL: published again

    assert len(harness.produced(CLEAN_EVENTS.name)) == 2


async def test_the_key_is_marked_with_the_position_of_the_published_record(harness):
    await put(harness, raw("1"))
    await put(harness, raw("2"))

    marks = [json.loads(record.value) for record in harness.produced(f"wxstream-{SEEN_TABLE}-changelog")]
    assert marks == ["0@0", "0@1"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"not json", "undecodable: JSONDecodeError"),
        (b"\xff not json", "undecodable: UnicodeDecodeError"),
        (b"[1, 2]", "schema: expected a JSON object, got list"),
        (raw("1", openid=""), "schema: missing account/openid/dedupe_key"),
        (raw("1", fields={"FromUserName": "oUser", "MsgType": "text"}), "schema: missing CreateTime"),
    ],
    ids=["not-json", "not-utf8", "not-an-object", "no-openid", "no-create-time"],
)
async def test_a_poison_record_goes_to_the_dead_letters_with_the_reason(harness, value, reason):
    await put(harness, value)
    await put(harness, raw("1"))  # and the partition goes on

    [letter] = harness.values(DEAD_LETTERS.name, DeadLetter)
    assert letter.reason.startswith(reason)
    assert (letter.source_topic, letter.partition, letter.offset) == (RAW_EVENTS.name, 0, 0)
    assert letter.payload == value.decode("utf-8", "backslashreplace")
    assert harness.produced(DEAD_LETTERS.name)[0].key == KEY.encode()
    assert [e.dedupe_key for e in harness.values(CLEAN_EVENTS.name, CleanEvent)] == ["msg:1"]
    assert harness.metric("wxstream_dead_letters_total", reason=reason.split(":")[0]) == 1
