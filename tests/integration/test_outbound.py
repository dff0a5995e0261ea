"""Outbound delivery on the real stack, with the stack's WeChat simulator playing the users
and WeChat's API: every reply reaches its user exactly once, by the passive reply or by
the customer-service API; long replies in parts, in order, across a token expiry;
45015 -> mailbox -> the next message delivers it; an account without the API; and a
worker killed with kill -9 while it sends, which sends no part twice."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import Counter

import aiohttp
import pytest

from app.outbound.split import split_text
from app.topics import DEAD_LETTERS
from tests.integration.kafka_helpers import end_offsets, read_topic
from tests.integration.stack_helpers import isolated_settings, running_stack

pytestmark = pytest.mark.integration

KEY = base64.b64encode(b"o" * 32).decode().rstrip("=")
ACCOUNTS_TOML = f"""
[accounts.shop]
token = "shop-token"
appid = "wxoutshop0000001"
secret = "shop-secret"
aes_keys = ["{KEY}"]
mode = "safe"
user_per_minute = 1000

[accounts.free]
token = "free-token"
appid = "wxoutfree0000001"
secret = "free-secret"
certified = false
user_per_minute = 1000
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("outbound")
    (root / "accounts.toml").write_text(ACCOUNTS_TOML)
    # A passive wait about as long as the echo model takes: some replies go back in the
    # HTTP response, the others by the API, and both paths race.
    settings = isolated_settings(
        root / "data",
        accounts=root / "accounts.toml",
        passive_reply_wait_s=0.06,
        uncertified_hold_s=4.0,
        outbound_verdict_timeout_s=10.5,
    )
    with running_stack(settings) as stack:
        yield stack


class Sim:
    """The stack's simulator, over HTTP."""

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.session = session

    async def say(self, account: str, openid: str, text: str) -> dict:
        async with self.session.post(f"{self.url}/_sim/send", json={"account": account, "openid": openid, "text": text}) as r:
            assert r.status == 200, await r.text()
            return await r.json()

    async def received(self, account: str, openid: str) -> list[dict]:
        async with self.session.get(f"{self.url}/_sim/received", params={"account": account, "openid": openid}) as r:
            return (await r.json())["received"]

    async def api_calls(self) -> Counter:
        async with self.session.get(f"{self.url}/_sim/stats") as r:
            return Counter((await r.json())["api"])

    async def faults(self, **fault: object) -> None:
        async with self.session.post(f"{self.url}/_sim/faults", json=fault) as r:
            assert r.status == 200, await r.text()

    async def until(self, account: str, openid: str, done, timeout: float = 30.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            received = await self.received(account, openid)
            if done(received):
                return received
            if time.monotonic() > deadline:
                raise AssertionError(f"{openid} received {received}")
            await asyncio.sleep(0.2)


@pytest.fixture
async def sim(stack):
    async with aiohttp.ClientSession() as session:
        sim = Sim(stack.child_settings.wechat_api_url, session)
        yield sim
        async with session.delete(f"{sim.url}/_sim/faults"):
            pass


def long_text(tag: str, sentences: int = 100) -> str:
    return "".join(f"{tag} sentence {i} says something about the weather today. " for i in range(sentences))


async def test_each_message_is_answered_once_by_one_path(stack, sim):
    users = [f"o_once_{n}" for n in range(6)]

    async def converse(openid: str) -> list[str]:
        said = [f"{openid} message {i}" for i in range(5)]
        for text in said:
            await sim.say("shop", openid, text)
        return said

    said = dict(zip(users, await asyncio.gather(*(converse(u) for u in users))))
    for openid in users:
        await sim.until("shop", openid, lambda r: len(r) >= 5)
    await asyncio.sleep(2.0)  # nothing more may come
    paths = Counter()
    for openid in users:
        received = await sim.received("shop", openid)
        assert sorted(item["text"] for item in received) == sorted(said[openid])
        api = [item["text"] for item in received if item["path"] == "api"]
        assert api == [text for text in said[openid] if text in api]  # the API keeps the user's order
        paths.update(item["path"] for item in received)
    # How many went each way depends on the machine's speed; each went one way, once.
    assert sum(paths.values()) == 30, paths


async def test_a_long_reply_arrives_in_parts_in_order_across_a_token_expiry(sim):
    text = long_text("Parts")
    await sim.faults(endpoint="custom_send", errcodes=[42001])  # expired at WeChat, not in our cache
    await sim.say("shop", "o_long", text)
    parts = split_text(text, 2048)
    received = await sim.until("shop", "o_long", lambda r: len(r) >= len(parts))
    assert [item["text"] for item in received] == list(parts)
    assert len(parts) == 3 and all(item["path"] == "api" for item in received)
    assert (await sim.api_calls())["custom_send 42001"] == 1


async def test_45015_keeps_the_reply_for_the_users_next_message(sim):
    first = long_text("Mailbox", 45)  # too long for a passive reply: the API path for sure
    await sim.faults(endpoint="custom_send", errcodes=[45015])
    await sim.say("shop", "o_mailbox", first)
    deadline = time.monotonic() + 30
    while (await sim.api_calls())["custom_send 45015"] < 1:
        assert time.monotonic() < deadline, "the sender never tried"
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)
    assert await sim.received("shop", "o_mailbox") == []
    await sim.say("shop", "o_mailbox", "and now?")
    expected = f"{first}\n\nand now?"
    received = await sim.until("shop", "o_mailbox", lambda r: "".join(i["text"] for i in r) == expected)
    assert all(item["path"] == "api" for item in received)


async def test_an_account_without_the_api_answers_passively_only(sim):
    for i in range(3):
        outcome = await sim.say("free", "o_free", f"free {i}")
        assert outcome["result"] == "passive", outcome
        assert outcome["reply"] == f"free {i}"
    received = await sim.received("free", "o_free")
    assert [(item["path"], item["text"]) for item in received] == [("passive", f"free {i}") for i in range(3)]


async def test_a_worker_killed_mid_send_sends_no_part_twice(stack, sim):
    """Runs last in this module: it kills the worker."""
    users = [f"o_kill_{n}" for n in range(4)]
    texts = {openid: long_text(openid) for openid in users}
    await sim.faults(endpoint="custom_send", latency_s=0.4)
    for openid in users:
        await sim.say("shop", openid, texts[openid])
    deadline = time.monotonic() + 30
    while not any([await sim.received("shop", openid) for openid in users]):
        assert time.monotonic() < deadline, "nothing was sent"
        await asyncio.sleep(0.05)
    stack.stop_worker(kill=True)
    stack.start_worker()

    def settled(received: dict[str, list[dict]], letters: set[str]) -> bool:
        return all(len(received[u]) == len(split_text(texts[u], 2048)) or u in letters for u in users)

    deadline = time.monotonic() + 60
    while True:
        received = {openid: await sim.received("shop", openid) for openid in users}
        written = await end_offsets(stack.child_settings.kafka_url, DEAD_LETTERS.name)
        records = await read_topic(stack.child_settings.kafka_url, DEAD_LETTERS.name, lambda r: len(r) >= written)
        letters = {
            json.loads(json.loads(r.value)["payload"])["reply"]["openid"]
            for r in records
            if json.loads(r.value)["reason"].startswith("delivery: interrupted")
        }
        if settled(received, letters):
            break
        assert time.monotonic() < deadline, (received, letters)
        await asyncio.sleep(0.5)
    for openid in users:
        parts = list(split_text(texts[openid], 2048))
        got = [item["text"] for item in received[openid]]
        assert got == parts[: len(got)], f"{openid}: parts out of order or repeated"
        assert len(got) == len(parts) or openid in letters
