"""`wxstream send`: play WeChat for one text message and print the reply.

Signs (and in compat/safe mode encrypts) a callback for a configured account exactly as
WeChat would and posts it to the ingress. A passive reply is printed at once. Otherwise
the reply comes by the customer-service API: with the stack's WeChat simulator, `send`
tells it that the user wrote (which opens the user's reply window) and waits until the
simulator records the message the user received; with WeChat's real API, it waits for the
reply on the replies topic.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from app.accounts import Account
from app.stack import read_stack_file
from app.settings import Settings
from app.topics import REPLIES, Reply
from app.wechat.replies import ACK_BODY
from app.wechat.xmlparse import render_fields

__all__ = ("SendError", "Answer", "send_text", "text_callback_xml")


class SendError(RuntimeError):
    """The message could not be delivered or no reply came in time."""


@dataclass(frozen=True)
class Answer:
    """What the user would see, and how it came: `passive` (in the HTTP response), `api`
    (the sender's customer-service messages, as the simulator received them) or `topic`
    (on the replies topic, for the outbound sender to deliver)."""

    text: str
    path: str


@dataclass(frozen=True)
class Endpoints:
    kafka_url: str
    ingress_url: str
    simulator_url: str = ""


def resolve_endpoints(settings: Settings) -> Endpoints:
    """Explicit settings first, then the running `wxstream up` of this data dir."""
    stack = read_stack_file(settings.data_dir)
    kafka_url = settings.kafka_url or (stack.kafka_url if stack else None)
    if kafka_url is None:
        raise SendError(
            f"no running stack found in {settings.data_dir} and WXSTREAM_KAFKA_URL is unset: start it with `make run`"
        )
    if stack is None:
        return Endpoints(kafka_url, settings.ingress_url)
    return Endpoints(kafka_url, stack.ingress_url, stack.simulator_url)


def text_callback_xml(account: Account, openid: str, text: str, msg_id: int, create_time: int) -> str:
    return render_fields(
        {
            "ToUserName": account.original_id or account.appid,
            "FromUserName": openid,
            "CreateTime": str(create_time),
            "MsgType": "text",
            "Content": text,
            "MsgId": str(msg_id),
        }
    )


async def send_text(settings: Settings, account: Account, openid: str, text: str, timeout: float) -> Answer:
    endpoints = resolve_endpoints(settings)
    if endpoints.simulator_url:
        return await _through_simulator(endpoints.simulator_url, account, openid, text, timeout)
    now = int(time.time())
    msg_id = (time.time_ns() // 1000) << 8 | secrets.randbelow(256)
    xml = text_callback_xml(account, openid, text, msg_id, now)
    query, body = account.codec.encode_callback(
        xml, timestamp=str(now), nonce=str(secrets.randbelow(10**9)), encrypted=account.mode != "plain", openid=openid
    )
    consumer = AIOKafkaConsumer(bootstrap_servers=endpoints.kafka_url, enable_auto_commit=False)
    try:
        await consumer.start()
    except KafkaError as exc:
        await consumer.stop()
        raise SendError(f"cannot reach the broker at {endpoints.kafka_url}: {exc}") from None
    try:
        partitions = [TopicPartition(REPLIES.name, p) for p in sorted(consumer.partitions_for_topic(REPLIES.name) or ())]
        if not partitions:
            raise SendError(f"topic {REPLIES.name} does not exist on {endpoints.kafka_url}")
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve positions now, before the reply can be written
            await consumer.position(tp)
        answer = await _post(f"{endpoints.ingress_url}/wechat/{account.name}", query, body)
        if answer.strip() not in ("", ACK_BODY):
            return Answer(account.codec.decode_reply(answer).get("Content", ""), "passive")
        reply = await _await_reply(consumer, account.name, f"msg:{msg_id}", timeout)
        return Answer(reply.text, "topic")
    finally:
        await consumer.stop()


async def _through_simulator(simulator: str, account: Account, openid: str, text: str, timeout: float) -> Answer:
    """The stack's simulator plays the user: it sends the callback with WeChat's timing and
    records what the user received, passively or by the API."""
    async with aiohttp.ClientSession() as session:
        try:
            seen = len(await _received(session, simulator, account.name, openid))
            payload = {"account": account.name, "openid": openid, "text": text}
            async with session.post(f"{simulator}/_sim/send", json=payload) as response:
                if response.status >= 400:
                    raise SendError(f"the WeChat simulator refused the message ({response.status}): {(await response.text()).strip()}")
                outcome = await response.json()
        except aiohttp.ClientError as exc:
            raise SendError(f"cannot reach the WeChat simulator at {simulator}: {exc}") from None
        if outcome["result"] == "passive":
            return Answer(outcome["reply"], "passive")
        if outcome["result"] == "failed":
            raise SendError(f"the ingress did not take the message: {outcome['error']}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            received = await _received(session, simulator, account.name, openid)
            if len(received) > seen:
                # Wait a moment for the rest of a reply sent in parts, then join them.
                await asyncio.sleep(0.5)
                received = await _received(session, simulator, account.name, openid)
                return Answer("".join(item["text"] for item in received[seen:]), "api")
            await asyncio.sleep(0.2)
    raise SendError(f"no reply within {timeout:g}s; is the worker running? (see its log)")


async def _received(session: aiohttp.ClientSession, simulator: str, account: str, openid: str) -> list[dict]:
    async with session.get(f"{simulator}/_sim/received", params={"account": account, "openid": openid}) as response:
        response.raise_for_status()
        return (await response.json())["received"]


async def _post(url: str, query: dict[str, str], body: bytes) -> str:
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(url, params=query, data=body, headers={"Content-Type": "text/xml"}) as response:
                answer = await response.text()
                if response.status != 200:
                    raise SendError(f"ingress answered {response.status}: {answer.strip()}")
                return answer
    except aiohttp.ClientConnectionError as exc:
        raise SendError(f"cannot reach the ingress at {url}: {exc}; is `wxstream up` running?") from None


async def _await_reply(consumer: AIOKafkaConsumer, account: str, in_reply_to: str, timeout: float) -> Reply:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        batches = await consumer.getmany(timeout_ms=int(min(left, 1.0) * 1000))
        for records in batches.values():
            for record in records:
                reply = Reply.loads(record.value)
                if reply.account == account and reply.in_reply_to == in_reply_to:
                    return reply
    raise SendError(f"no reply to {in_reply_to} within {timeout:g}s; is the worker running? (see its log)")
