"""The callback sender: WeChat's encoding in each mode, its retries and deadline, and how
each answer is judged and recorded."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from app.simulator.callbacks import CallbackSender, Timing, encode
from app.simulator.messages import MessageFactory
from app.simulator.population import User
from app.wechat import CallbackQuery
from app.wechat.replies import ACK_BODY
from app.wechat.xmlparse import parse_fields
from tests.unit.simulator.conftest import COMPAT, PLAIN, SAFE, make_state, never

FAST = Timing(deadline_s=0.3, attempts=3)


@pytest.fixture
async def sender(ingress):
    url, fake = ingress
    state = make_state()
    async with aiohttp.ClientSession() as session:
        yield CallbackSender(state, session, url, FAST), fake


def text_message(account=SAFE, openid="o_user_1", seq=0, factory=None):
    factory = factory or MessageFactory()
    return factory.build(seq, make_state().accounts[account.name], User(account.name, openid), "text")


@pytest.mark.parametrize("account", [SAFE, COMPAT, PLAIN])
def test_encoding_per_mode_is_what_the_ingress_accepts(account):
    message = text_message(account)
    query, body = encode(make_state().accounts[account.name], message)
    decoded = account.codec.decode(CallbackQuery.from_mapping(query), body)
    assert decoded.message.raw["Content"] == message.text
    assert decoded.encrypted == (account.mode != "plain")
    assert query["openid"] == "o_user_1" and query["signature"]
    fields = parse_fields(body)
    if account.mode == "safe":
        assert set(fields) == {"ToUserName", "Encrypt"}
    elif account.mode == "compat":  # the plain fields beside <Encrypt>
        assert fields["Content"] == message.text and fields["Encrypt"]
    else:
        assert "Encrypt" not in fields and "msg_signature" not in query


async def test_passive_reply_is_decoded_and_recorded(sender):
    sender, fake = sender
    message = text_message()
    outcome = await sender.deliver(message)
    assert (outcome.result, outcome.reply, outcome.reply_type, outcome.attempts) == ("passive", message.text, "text", 1)
    [item] = sender.state.recorder.received(SAFE.name, "o_user_1")
    assert (item.path, item.text, item.in_reply_to) == ("passive", message.text, message.msg_id)
    assert sender.state.stats.callbacks == {"sent": 1, "passive": 1}


async def test_a_callback_opens_the_users_reply_window(sender):
    sender, _ = sender
    assert sender.state.users.may_send(SAFE.name, "o_user_1") == 45015
    await sender.deliver(text_message())
    assert sender.state.users.may_send(SAFE.name, "o_user_1") == 0


@pytest.mark.parametrize("body", [ACK_BODY, ""])
async def test_success_or_empty_is_an_ack(sender, body):
    sender, fake = sender

    async def ack(message):
        return web.Response(text=body)

    fake.behaviour = ack
    outcome = await sender.deliver(text_message())
    assert outcome.result == "acked" and outcome.attempts == 1
    assert sender.state.recorder.received() == []


async def test_non_200_is_retried_with_the_same_request(sender):
    sender, fake = sender
    statuses = iter([500, 503])

    async def flaky(message):
        status = next(statuses, 200)
        return web.Response(status=status) if status != 200 else "answer"

    fake.behaviour = flaky
    outcome = await sender.deliver(text_message())
    assert (outcome.result, outcome.attempts, outcome.retries, outcome.reply) == ("passive", 3, 2, "answer")
    assert len({m.raw["MsgId"] for _, m in fake.requests}) == 1 and len(fake.requests) == 3
    assert sender.state.stats.callbacks["retries"] == 2


async def test_three_failed_attempts_fail_the_delivery(sender):
    sender, fake = sender

    async def broken(message):
        return web.Response(status=500)

    fake.behaviour = broken
    outcome = await sender.deliver(text_message())
    assert (outcome.result, outcome.attempts, outcome.error) == ("failed", 3, "HTTP 500")


async def test_an_attempt_times_out_at_the_deadline(sender):
    sender, fake = sender
    fake.behaviour = never
    loop = asyncio.get_running_loop()
    started = loop.time()
    outcome = await sender.deliver(text_message())
    assert (outcome.result, outcome.attempts) == ("failed", 3)
    assert "no answer within 0.3s" in outcome.error
    assert 0.9 <= loop.time() - started < 2.0


async def test_late_answer_after_a_timeout_is_ignored_and_the_retry_counts(sender):
    sender, fake = sender
    calls = 0

    async def slow_first(message):
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(0.6)
        return "answer"

    fake.behaviour = slow_first
    outcome = await sender.deliver(text_message())
    assert (outcome.result, outcome.attempts) == ("passive", 2)
    assert len(sender.state.recorder.received()) == 1


async def test_unreachable_ingress_fails_with_the_reason():
    state = make_state()
    async with aiohttp.ClientSession() as session:
        sender = CallbackSender(state, session, "http://127.0.0.1:9", Timing(deadline_s=1))
        outcome = await sender.deliver(text_message())
    assert outcome.result == "failed" and outcome.attempts == 3
    assert "Connect" in outcome.error


async def test_reply_that_is_not_valid_xml_fails(sender):
    sender, fake = sender

    async def garbage(message):
        return web.Response(text="oops, an error page")

    fake.behaviour = garbage
    outcome = await sender.deliver(text_message())
    assert outcome.result == "failed" and outcome.error.startswith("invalid reply")
    assert outcome.attempts == 1  # a 200 ends the delivery, as at WeChat
    assert sender.state.stats.callbacks["invalid_reply"] == 1


async def test_reply_to_another_user_fails(sender):
    sender, fake = sender

    async def misaddressed(message):
        return web.Response(
            text=f"<xml><ToUserName>o_someone_else</ToUserName><FromUserName>x</FromUserName>"
            f"<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>hi</Content></xml>"
        )

    fake.behaviour = misaddressed
    outcome = await sender.deliver(text_message(PLAIN))
    assert outcome.result == "failed" and "o_someone_else" in outcome.error
    assert sender.state.recorder.received() == []


@pytest.mark.parametrize("kwargs", [{"deadline_s": 0}, {"attempts": 0}, {"retry_delay_s": -1}])
def test_bad_timings_are_refused(kwargs):
    with pytest.raises(ValueError):
        Timing(**kwargs)
