"""The conversation in Faust's test context: clean events in, replies out, with the real
rate, session, answer-cache and mailbox tables in memory and a fake model.

The worker's dedupe agent hands each clean event to the conversation as it publishes
it; here an agent on the clean topic does the same, so that each test gives it one."""

from __future__ import annotations

import asyncio
import itertools
import math
import time

import faust
import pytest

from agents import conversation
from agents.conversation import RATE_NOTICE, RESET_TEXT
from agents.delivery import Acks
from app.accounts import Account
from app.clients.errors import ModelError
from app.keywords import KeywordRule
from app.settings import Settings
from app.topics import CLEAN_EVENTS, CLEAN_SCHEMA, REPLIES, CleanEvent, Reply, reply_id, user_key
from app.wechat.replies import PASSIVE_TEXT_MAX_BYTES
from tables.answers import answer_cache_table
from tables.outbox import REST_OF, Mailbox, MailItem, Outbox
from tables.ratelimits import RateTables
from tables.sessions import sessions_table
from tests.unit.agents.faust_harness import AgentHarness

IDLE_S = 1800.0
USER = user_key("demo", "oUser")
DEMO = Account(
    name="demo",
    token="token",
    appid="wx0000000000000001",
    system_prompt="Be brief.",
    user_per_minute=3,
    keywords=(
        KeywordRule(pattern="price", reply="See the price list."),
        KeywordRule(pattern="event:subscribe", reply="Welcome!"),
    ),
)

FREE = Account(name="free", token="token", appid="wx0000000000000002", certified=False)  # no customer-service API


class FakeModel:
    """What the agent uses of ModelClient; answers `answer: <the user's last message>`."""

    model_name = "fake"

    def __init__(self) -> None:
        self.prompts: list[str] = []
        self.failure: ModelError | None = None
        self.closed = False

    async def generate(self, prompt: str, max_tokens: int, *, account: str = "", user: str = "") -> str:
        self.prompts.append(prompt)
        if self.failure is not None:
            raise self.failure
        asked = prompt.rsplit("<|user|>\n", 1)[1].removesuffix("<|assistant|>\n")
        return f"answer: {asked}"

    def model_for(self, account: str, user: str) -> str:
        return self.model_name

    async def close(self) -> None:
        self.closed = True


class Clock:
    """Stands in for the `time` module in agents.conversation: the sessions' clock."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


_msg_ids = itertools.count(1)


def message(text: str, openid: str = "oUser", msg_type: str = "text", account: str = "demo", **fields: str) -> CleanEvent:
    msg_id = str(next(_msg_ids))
    return CleanEvent(
        schema=CLEAN_SCHEMA,
        account=account,
        openid=openid,
        msg_type=msg_type,
        event=fields.get("Event", ""),
        dedupe_key=f"msg:{msg_id}",
        fields={
            "FromUserName": openid,
            "CreateTime": "1714000000",
            "MsgType": msg_type,
            "Content": text,
            "MsgId": msg_id,
            **fields,
        },
        event_time=1714000000,
        ingest_time=1714000000.5,
    )


@pytest.fixture
def clock(monkeypatch):
    clock = Clock(time.time())
    monkeypatch.setattr(conversation, "time", clock)
    return clock


@pytest.fixture
def model():
    return FakeModel()


@pytest.fixture
async def harness():
    return AgentHarness(Settings(partitions=1, session_idle_s=IDLE_S))


@pytest.fixture
def tables(harness):
    app, settings = harness.app, harness.settings
    return conversation.Tables(
        rates=RateTables.declare(app, settings),
        sessions=sessions_table(app, settings),
        answers=answer_cache_table(app, settings),
        mailboxes=Outbox(app, settings).mailboxes,
    )


@pytest.fixture(autouse=True)
async def running(harness, tables, model, clock):
    app, settings = harness.app, harness.settings
    acks = Acks(app)
    accounts = {"demo": DEMO, "free": FREE}
    conversations = conversation.Responder(acks, harness.topics, tables, accounts, settings, model, harness.metrics).conversation()

    @app.agent(harness.topics.clean, name="test.conversation")
    async def hand_over(stream: faust.StreamT[CleanEvent]) -> None:
        try:
            async for key, event in stream.items():
                with acks.holding(faust.current_event()):
                    acks.until(faust.current_event(), await conversations.answer(key, event))
        finally:
            await conversations.close()

    async with harness.running(hand_over):
        yield
    assert model.closed, "closing the conversation closes the model client"


async def say(harness: AgentHarness, event: CleanEvent) -> list[Reply]:
    """Hand `event` to the agent; the replies it produced for it."""
    before = len(harness.produced(REPLIES.name))
    await harness.put(event, key=user_key(event.account, event.openid), topic=CLEAN_EVENTS.name)
    return harness.values(REPLIES.name, Reply)[before:]


# --- answers -------------------------------------------------------------------------


async def test_a_question_is_answered_by_the_model(harness, model):
    event = message("hello")
    [reply] = await say(harness, event)

    assert reply.text == "answer: hello"
    assert (reply.model, reply.in_reply_to, reply.reply_id) == ("fake", event.dedupe_key, reply_id("demo", event.dedupe_key))
    assert (reply.account, reply.openid, reply.received_at) == ("demo", "oUser", event.ingest_time)
    assert model.prompts == ["[gMASK]<sop><|system|>\nBe brief.<|user|>\nhello<|assistant|>\n"]
    assert harness.produced(REPLIES.name)[0].key == USER.encode()
    assert harness.metric("wxstream_replies_total", account="demo", source="model") == 1


async def test_the_session_is_the_context_of_the_next_question(harness, model, tables, clock):
    await say(harness, message("my name is Li"))
    await say(harness, message("what is my name?"))

    assert "<|user|>\nmy name is Li<|assistant|>\nanswer: my name is Li<|user|>\nwhat is my name?" in model.prompts[1]
    session = tables.sessions.latest(USER, clock.now)
    assert [turn.text for turn in session.turns] == [
        "my name is Li",
        "answer: my name is Li",
        "what is my name?",
        "answer: what is my name?",
    ]


async def test_the_jobs_gauge_counts_messages_being_worked_on(harness):
    await say(harness, message("PRICE"))

    assert harness.metrics.registry.get_sample_value("wxstream_conversation_jobs") == 0  # done with it


async def test_a_keyword_is_answered_without_the_model(harness, model):
    [reply] = await say(harness, message("PRICE"))
    [welcome] = await say(harness, message("", msg_type="event", Event="subscribe"))

    assert (reply.text, reply.model) == ("See the price list.", "keyword")
    assert (welcome.text, welcome.model) == ("Welcome!", "keyword")
    assert model.prompts == []


async def test_an_event_without_a_rule_gets_no_reply(harness, model):
    assert await say(harness, message("", msg_type="event", Event="unsubscribe")) == []
    assert model.prompts == []


async def test_a_context_free_question_is_answered_from_the_cache(harness, model):
    [first] = await say(harness, message("What is wxstream?", openid="oFirst"))
    [second] = await say(harness, message("what is  WXSTREAM?", openid="oSecond"))

    assert (first.model, second.model) == ("fake", "cache")
    assert second.text == first.text
    assert len(model.prompts) == 1


async def test_a_model_failure_is_answered_with_the_fallback_text(harness, model, tables, clock):
    model.failure = ModelError("unavailable", model="fake", kind="unavailable")
    [reply] = await say(harness, message("hello"))

    assert (reply.text, reply.model) == (harness.settings.model_fallback_text, "fallback")
    assert harness.metric("wxstream_model_fallbacks_total", account="demo", model="fake", reason="unavailable") == 1
    assert tables.sessions.latest(USER, clock.now) is None, "no turn without an answer"


async def test_an_unknown_account_is_dropped_and_counted(harness):
    stranger = message("hello").derive(account="nobody")
    assert await say(harness, stranger) == []
    assert harness.metric("wxstream_drops_total", account="nobody", reason="unknown_account") == 1


# --- reset ---------------------------------------------------------------------------


async def test_reset_forgets_the_session(harness, model, tables, clock):
    await say(harness, message("my name is Li"))
    [reset] = await say(harness, message("/reset"))
    await say(harness, message("what is my name?"))

    assert (reset.text, reset.model) == (RESET_TEXT, "reset")
    assert "my name is Li" not in model.prompts[-1]
    assert [turn.text for turn in tables.sessions.latest(USER, clock.now).turns] == [
        "what is my name?",
        "answer: what is my name?",
    ]


# --- rate limit ----------------------------------------------------------------------


async def test_over_the_user_limit_one_notice_then_silence(harness, model):
    replies = [await say(harness, message(f"question {i}")) for i in range(DEMO.user_per_minute + 3)]

    answered = replies[: DEMO.user_per_minute]
    assert [r.model for [r] in answered] == ["fake"] * DEMO.user_per_minute
    [notice] = replies[DEMO.user_per_minute]
    assert (notice.text, notice.model) == (RATE_NOTICE, "notice")
    assert replies[DEMO.user_per_minute + 1 :] == [[], []]
    assert len(model.prompts) == DEMO.user_per_minute
    assert harness.metric("wxstream_drops_total", account="demo", reason="rate_limited") == 3


async def test_the_user_limit_is_per_user(harness):
    for i in range(DEMO.user_per_minute + 1):
        await say(harness, message(f"question {i}", openid="oBusy"))
    [reply] = await say(harness, message("hello", openid="oQuiet"))

    assert reply.model == "fake"


async def test_a_message_at_the_limit_processed_again_is_not_counted_twice(harness, model):
    for i in range(DEMO.user_per_minute - 1):
        await say(harness, message(f"question {i}"))
    last = message("the last question this minute")
    model.failure = ModelError("unavailable", model="fake", kind="unavailable")
    [fallback] = await say(harness, last)  # counted; no answer stored, so a replay asks again
    model.failure = None

    [again] = await say(harness, last)  # processed again, as after a crash

    assert fallback.model == "fallback" and (again.text, again.model) == ("answer: the last question this minute", "fake")


async def test_the_notice_processed_again_is_the_notice_again(harness):
    for i in range(DEMO.user_per_minute):
        await say(harness, message(f"question {i}"))
    over = message("one too many")
    [notice] = await say(harness, over)

    [again] = await say(harness, over)

    assert notice.text == again.text == RATE_NOTICE and notice.reply_id == again.reply_id


# --- replay after a crash ------------------------------------------------------------


async def test_a_message_processed_again_gets_the_same_reply_and_no_second_model_call(harness, model, tables, clock):
    event = message("hello")
    [first] = await say(harness, event)
    [again] = await say(harness, event)  # read again after a crash, before its offset was committed

    assert (again.reply_id, again.text, again.model) == (first.reply_id, first.text, "replay")
    assert len(model.prompts) == 1
    assert len(tables.sessions.latest(USER, clock.now).turns) == 2, "no second turn"


# --- mailbox -------------------------------------------------------------------------


def fill_mailbox(tables: conversation.Tables, *texts: str) -> None:
    """As if restored from the changelog: the outbound agent left these replies."""
    items = [MailItem(reply_id=f"r{i}", text=text) for i, text in enumerate(texts)]
    tables.mailboxes.raw_update({USER: Mailbox(items=items)})


async def test_mailbox_replies_go_first_and_the_mailbox_is_emptied(harness, tables):
    fill_mailbox(tables, "owed one", "owed two")
    [reply] = await say(harness, message("hello"))
    [later] = await say(harness, message("again"))

    assert reply.text == "owed one\n\nowed two\n\nanswer: hello"
    assert reply.model == "fake"
    assert USER not in tables.mailboxes
    assert later.text == "answer: again"


async def test_mailbox_replies_go_even_when_the_message_gets_no_answer(harness, tables):
    fill_mailbox(tables, "owed one")
    [reply] = await say(harness, message("", msg_type="event", Event="unsubscribe"))

    assert (reply.text, reply.model) == ("owed one", "mailbox")
    assert USER not in tables.mailboxes


async def test_a_reply_mailboxed_while_the_owed_ones_go_out_stays_in_the_mailbox(harness, tables, monkeypatch):
    fill_mailbox(tables, "owed one")
    acknowledged = asyncio.get_running_loop().create_future()
    send = harness.producer.send

    async def slow_replies(topic, *args, **kwargs):
        sent = await send(topic, *args, **kwargs)
        if topic != REPLIES.name:
            return sent
        return asyncio.ensure_future(_after(acknowledged, sent))

    monkeypatch.setattr(harness.producer, "send", slow_replies)
    saying = asyncio.create_task(say(harness, message("hello")))
    while not harness.produced(REPLIES.name):
        await asyncio.sleep(0.01)
    # Meanwhile the outbound agent mailboxes another reply for the user.
    owed = tables.mailboxes[USER].items
    tables.mailboxes.raw_update({USER: Mailbox(items=[*owed, MailItem(reply_id="r9", text="owed two")])})
    acknowledged.set_result(None)
    await saying

    assert [item.text for item in tables.mailboxes[USER].items] == ["owed two"]


async def _after(first: asyncio.Future, then: asyncio.Future):
    await first
    return await then


# --- sessions: idle timeout and purging ----------------------------------------------


def window_end(at: float) -> float:
    return (math.floor(at / IDLE_S) + 1) * IDLE_S


async def test_a_conversation_goes_on_across_a_window_boundary(harness, model, clock, tables):
    clock.now = window_end(time.time()) - 1
    await say(harness, message("my name is Li"))
    clock.now += 2  # the next window, 2 s later: the session is read from the window before
    await say(harness, message("what is my name?"))

    assert "my name is Li" in model.prompts[1]
    assert len(tables.sessions.latest(USER, clock.now).turns) == 4


async def test_a_reset_forgets_the_session_of_the_window_before_too(harness, model, clock, tables):
    clock.now = window_end(time.time()) - 1
    await say(harness, message("my name is Li"))
    clock.now += 2
    await say(harness, message("/reset"))
    await say(harness, message("what is my name?"))

    assert "my name is Li" not in model.prompts[-1]
    assert len(tables.sessions.latest(USER, clock.now).turns) == 2


async def test_after_the_idle_timeout_a_new_conversation_starts(harness, model, clock, tables):
    await say(harness, message("my name is Li"))
    clock.now += IDLE_S + 1
    await say(harness, message("what is my name?"))

    assert "my name is Li" not in model.prompts[1]
    assert len(tables.sessions.latest(USER, clock.now).turns) == 2


async def test_a_session_is_not_read_from_older_windows(harness, clock, tables):
    await say(harness, message("my name is Li"))

    assert tables.sessions.latest(USER, clock.now + IDLE_S) is not None
    assert tables.sessions.latest(USER, clock.now + 2 * IDLE_S) is None


async def test_table_cleanup_purges_sessions_idle_for_two_windows(harness, clock, tables):
    now = clock.now
    clock.now = now - 4 * IDLE_S
    await say(harness, message("long ago", openid="oGone"))
    clock.now = now
    await say(harness, message("just now", openid="oHere"))

    windows = tables.sessions.windows
    assert windows.table.window.expires == 2 * IDLE_S
    await windows.table._del_old_keys()  # what Faust's table cleanup runs every interval

    assert [user for user, _ in windows.table.data.keys()] == [user_key("demo", "oHere")]



# --- accounts without the customer-service API -----------------------------------------

LONG = " ".join(f"Sentence number {n} of a long answer." for n in range(120))  # about 4,400 bytes


async def test_a_long_reply_without_the_api_is_cut_and_the_rest_comes_with_the_next_reply(harness, tables):
    free_user = user_key("free", "oUser")
    [first] = await say(harness, message(LONG, account="free"))

    assert len(first.text.encode("utf-8")) <= PASSIVE_TEXT_MAX_BYTES
    assert first.text.startswith("answer: Sentence number 0 ")
    assert first.text.endswith(f".\n\n{harness.settings.more_text}")
    [rest] = tables.mailboxes[free_user].items
    assert rest.reply_id == REST_OF.format(first.reply_id)
    assert first.text.removesuffix(f"\n\n{harness.settings.more_text}") + " " + rest.text == f"answer: {LONG}"

    [second] = await say(harness, message("next", account="free"))
    assert second.text.startswith(rest.text[:100])
    [third] = await say(harness, message("and then", account="free"))
    assert third.text.endswith("answer: next\n\nanswer: and then")
    assert free_user not in tables.mailboxes


async def test_the_rest_of_a_cut_reply_processed_again_stays_as_it_was(harness, tables):
    free_user = user_key("free", "oUser")
    event = message(LONG, account="free")
    [first] = await say(harness, event)
    before = tables.mailboxes[free_user]
    [again] = await say(harness, event)  # read again after a crash, before its offset was committed

    assert (again.reply_id, again.text) == (first.reply_id, first.text)
    assert tables.mailboxes[free_user] == before


async def test_a_short_reply_without_the_api_is_not_cut(harness, tables):
    [reply] = await say(harness, message("hello", account="free"))
    assert reply.text == "answer: hello"
    assert user_key("free", "oUser") not in tables.mailboxes
