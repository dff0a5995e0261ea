"""The stream pipeline on the real stack: dedupe, dead letters, rate limits, tenant
isolation, and sessions and reply identity across a kill -9 of the worker."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from dataclasses import replace

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from agents.conversation import RATE_NOTICE
from app.ingress.publisher import RawEventPublisher
from app.topics import CLEAN_EVENTS, DEAD_LETTERS, RAW_EVENTS, REPLIES, user_key
from tests.integration.kafka_helpers import publish_all, raw_text_event, read_topic
from tests.integration.stack_helpers import isolated_settings, running_stack

pytestmark = pytest.mark.integration

ACCOUNTS_TOML = """
[accounts.shop]
token = "shop-token"
appid = "wxshop0000000001"
user_per_minute = 3
account_per_second = 1000

[[accounts.shop.keywords]]
pattern = "price"
reply = "See the price list."

[accounts.flood]
token = "flood-token"
appid = "wxflood000000001"
user_per_minute = 1000
account_per_second = 4

[accounts.quiet]
token = "quiet-token"
appid = "wxquiet000000001"

[accounts.bulk]
token = "bulk-token"
appid = "wxbulk0000000001"
user_per_minute = 100000
account_per_second = 100000
"""

ADMIN_TOKEN = "test-admin-token"
_ids = iter(range(int(time.time() * 1000), 1 << 62))


def values(records):
    return [json.loads(r.value) for r in records]


def event(account: str, openid: str, text: str = "hi", msg_id: int | None = None):
    return raw_text_event(account, openid, msg_id or next(_ids), text)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    (root / "accounts.toml").write_text(ACCOUNTS_TOML)
    settings = isolated_settings(root / "data", accounts=root / "accounts.toml", admin_token=ADMIN_TOKEN)
    with running_stack(settings) as stack:
        yield stack


@pytest.fixture
async def publish(stack):
    settings = stack.child_settings
    publisher = RawEventPublisher(replace(settings, produce_timeout_s=30), settings.kafka_url)
    await publisher.start()
    yield lambda events: publish_all(publisher, events)
    await publisher.stop()


async def replies_for(stack, keys: set[str], timeout: float = 60):
    records = await read_topic(
        stack.child_settings.kafka_url, REPLIES.name, lambda r: keys <= {v["in_reply_to"] for v in values(r)}, timeout
    )
    return [v for v in values(records) if v["in_reply_to"] in keys]


async def test_retries_and_replays_reach_the_clean_topic_and_the_model_once(stack, publish):
    original = event("shop", "o_dup")
    await publish([original, original, original])
    sentinel = event("shop", "o_dup", "after")
    await publish([sentinel])
    wanted = {original.dedupe_key, sentinel.dedupe_key}
    clean = await read_topic(stack.child_settings.kafka_url, CLEAN_EVENTS.name, lambda r: wanted <= {v["dedupe_key"] for v in values(r)})
    assert [v["dedupe_key"] for v in values(clean)].count(original.dedupe_key) == 1
    replies = await replies_for(stack, wanted)
    assert sorted(v["in_reply_to"] for v in replies) == sorted(wanted)


async def test_poison_records_go_to_the_dead_letter_topic_and_do_not_block(stack, publish):
    producer = AIOKafkaProducer(bootstrap_servers=stack.child_settings.kafka_url, max_batch_size=1)
    await producer.start()
    key = user_key("shop", "o_poison").encode()
    try:
        await producer.send_and_wait(RAW_EVENTS.name, key=key, value=b"\xff\xfe not json")
        await producer.send_and_wait(RAW_EVENTS.name, key=key, value=json.dumps({"account": "shop"}).encode())
    finally:
        await producer.stop()
    after = event("shop", "o_poison", "still served")
    await publish([after])
    dead = await read_topic(stack.child_settings.kafka_url, DEAD_LETTERS.name, lambda r: len(r) >= 2)
    reasons = [v["reason"] for v in values(dead)]
    assert reasons[0].startswith("undecodable") and reasons[1].startswith("schema"), reasons
    assert "\\xff\\xfe not json" in values(dead)[0]["payload"]
    assert (await replies_for(stack, {after.dedupe_key}))[0]["text"] == "still served"


async def test_user_over_the_limit_gets_one_notice_per_window_and_no_model_call(stack, publish):
    burst = [event("shop", "o_chatty", f"question {i}") for i in range(6)]
    if time.time() % 60 > 50:  # keep the burst inside one minute window
        await asyncio.sleep(61 - time.time() % 60)
    await publish_in_order(publish, burst)
    answered = await replies_for(stack, {burst[3].dedupe_key} | {e.dedupe_key for e in burst[:3]})
    by_message = {v["in_reply_to"]: v for v in answered}
    assert [by_message[e.dedupe_key]["text"] for e in burst[:3]] == ["question 0", "question 1", "question 2"]
    assert by_message[burst[3].dedupe_key]["text"] == RATE_NOTICE
    await asyncio.sleep(2)  # the last two are dropped silently: nothing more for this user
    everything = await replies_for(stack, {e.dedupe_key for e in burst[:4]})
    assert not {v["in_reply_to"] for v in everything} & {e.dedupe_key for e in burst[4:]}
    metrics = await fetch(stack, "/metrics")
    assert 'wxstream_drops_total{account="shop",reason="rate_limited"} 3.0' in metrics


async def test_keyword_rule_answers_without_the_model(stack, publish):
    asked = event("shop", "o_keyword", " PRICE ")
    await publish([asked])
    (reply,) = await replies_for(stack, {asked.dedupe_key})
    assert (reply["text"], reply["model"]) == ("See the price list.", "keyword")


async def test_one_accounts_flood_does_not_starve_another_account(stack, publish):
    flood = [event("flood", f"o_flood_{i % 50}", f"spam {i}") for i in range(400)]
    quiet = [event("quiet", f"o_quiet_{i}", f"hello {i}") for i in range(5)]
    started = time.monotonic()
    await asyncio.gather(publish(flood), publish(quiet))
    answered = await replies_for(stack, {e.dedupe_key for e in quiet}, timeout=60)
    assert sorted(v["text"] for v in answered) == sorted(e.fields["Content"] for e in quiet)
    assert time.monotonic() - started < 30
    metrics = await fetch(stack, "/metrics")
    flood_model = _metric(metrics, 'wxstream_replies_total{account="flood",source="model"}')
    assert flood_model < 100, "the flood was cut by the account limit, not sent to the model"


async def test_each_users_messages_are_answered_in_order_while_users_overlap(stack, publish):
    users = [f"o_order_{u}" for u in range(4)]
    messages = [event("bulk", user, f"{user} says {n}") for n in range(6) for user in users]
    stack.stop_worker()  # a backlog: the worker takes up as many messages at once as it may
    await publish_in_order(publish, messages)
    stack.start_worker()
    replies = await replies_for(stack, {e.dedupe_key for e in messages})
    for user in users:
        said = [e.fields["Content"] for e in messages if e.openid == user]
        assert [r["text"] for r in replies if r["openid"] == user] == said
        session = json.loads(await fetch(stack, f"/wxstream/session/bulk/{user}", ADMIN_TOKEN))
        assert [t["text"] for t in session["turns"]] == [text for text in said for _ in ("user", "assistant")]


async def publish_in_order(publish, events) -> None:
    for item in events:
        await publish([item])


async def fetch(stack, path: str, token: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session:
        async with session.get(stack.child_settings.web_url + path, headers=headers) as response:
            return await response.text()


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


async def test_sessions_and_reply_ids_survive_a_kill_9_of_the_worker(stack, publish):
    """Runs last in this module: it kills the worker (and wipes its local state, so the
    tables must come back from their changelogs alone)."""
    first = [event("quiet", "o_session", f"turn {i}") for i in range(2)]
    await publish_in_order(publish, first)
    await replies_for(stack, {e.dedupe_key for e in first})
    before = json.loads(await fetch(stack, "/wxstream/session/quiet/o_session", ADMIN_TOKEN))
    assert [t["text"] for t in before["turns"]] == ["turn 0", "turn 0", "turn 1", "turn 1"]

    busy = [event("bulk", f"o_crash_{i % 10}", f"crash {i}") for i in range(300)]
    await publish(busy)
    await asyncio.sleep(0.5)  # mid-stream
    stack.stop_worker(kill=True)
    stack.start_worker(wipe_state=True)

    after = json.loads(await fetch(stack, "/wxstream/session/quiet/o_session", ADMIN_TOKEN))
    assert after["turns"] == before["turns"]
    third = event("quiet", "o_session", "turn 2")
    await publish([third])
    await replies_for(stack, {third.dedupe_key})
    grown = json.loads(await fetch(stack, "/wxstream/session/quiet/o_session", ADMIN_TOKEN))
    assert [t["text"] for t in grown["turns"]][-2:] == ["turn 2", "turn 2"]
    assert len(grown["turns"]) == 6

    replies = await replies_for(stack, {e.dedupe_key for e in busy}, timeout=90)
    ids = defaultdict(set)
    for reply in replies:
        ids[reply["in_reply_to"]].add(reply["reply_id"])
    assert len(ids) == len(busy), "every message answered"
    assert all(len(reply_ids) == 1 for reply_ids in ids.values()), "a reprocessed message kept its reply id"


async def test_user_data_views_need_the_admin_token(stack):
    assert '"forbidden' in await fetch(stack, "/wxstream/session/quiet/o_session")
    assert '"forbidden' in await fetch(stack, "/wxstream/session/quiet/o_session", "wrong")
