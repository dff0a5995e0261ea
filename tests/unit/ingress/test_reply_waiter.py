"""ReplyWaiter's memory of replies: what a callback, or WeChat's retry of it, finds there."""

from __future__ import annotations

import asyncio
import time

from app.ingress.passive import ReplyWaiter
from app.topics import Reply, reply_id


def _reply(in_reply_to: str) -> Reply:
    return Reply(
        reply_id=reply_id("shop", in_reply_to),
        account="shop",
        openid="oUser",
        in_reply_to=in_reply_to,
        text="the answer",
        model="echo",
        created_at=time.time(),
    )


async def test_a_reply_is_held_for_retries_until_it_is_old():
    waiter = ReplyWaiter("127.0.0.1:9", fetch_max_wait_ms=25, keep_s=60.0)
    assert await waiter.wait("shop", "oUser", "msg:1", timeout=0) is None

    waiter._arrived(_reply("msg:1"), now=100.0)

    assert (await waiter.wait("shop", "oUser", "msg:1", timeout=0)).text == "the answer"
    assert await waiter.wait("other", "oUser", "msg:1", timeout=0) is None
    waiter._forget_old(now=161.0)
    assert await waiter.wait("shop", "oUser", "msg:1", timeout=0) is None


async def test_a_callback_waiting_gets_its_reply_when_it_arrives():
    waiter = ReplyWaiter("127.0.0.1:9", fetch_max_wait_ms=25)
    waiting = asyncio.create_task(waiter.wait("shop", "oUser", "msg:2", timeout=5))
    await asyncio.sleep(0)

    waiter._arrived(_reply("msg:2"), now=time.monotonic())

    assert (await waiting).in_reply_to == "msg:2"


async def test_a_reply_is_only_found_by_the_user_it_answers():
    waiter = ReplyWaiter("127.0.0.1:9", fetch_max_wait_ms=25)
    waiter._arrived(_reply("msg:3"), now=time.monotonic())

    assert await waiter.wait("shop", "oSomeoneElse", "msg:3", timeout=0) is None
    assert (await waiter.wait("shop", "oUser", "msg:3", timeout=0)).openid == "oUser"
