"""The outbound agent in Faust's test context: replies and the delivery log in, messages
by a fake customer-service API out, with the real outbox and mailbox tables in memory."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from agents import outbound
from agents.delivery import Acks
from app.accounts import Account
from app.outbound import outbox as states
from app.outbound.outbox import OutboxEntry
from app.outbound.policy import Action
from app.outbound.sender import Outcome
from app.outbound.split import split_text
from app.settings import Settings
from app.topics import DEAD_LETTERS, DELIVERIES, REPLIES, DeadLetter, Delivery, Reply, user_key
from tables.outbox import Mailbox, MailItem, Outbox, latest
from tests.unit.agents.faust_harness import AgentHarness

PART_BYTES = 24
USER = user_key("demo", "oUser")
DEMO = Account(name="demo", token="token", appid="wx0000000000000001", secret="secret")


class FakeSender:
    """What the agent uses of Sender; answers SENT unless told otherwise, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.outcomes: list[Outcome] = []
        self.closed = False

    async def send_text(self, account: Account, openid: str, text: str) -> Outcome:
        self.calls.append(("text", openid, text))
        return self.outcomes.pop(0) if self.outcomes else Outcome(Action.SENT)

    async def typing(self, account: Account, openid: str) -> None:
        self.calls.append(("typing", openid))

    async def close(self) -> None:
        self.closed = True

    @property
    def texts(self) -> list[str]:
        return [call[2] for call in self.calls if call[0] == "text"]


def reply(text: str = "Your answer.", reply_id: str = "r1", openid: str = "oUser") -> Reply:
    now = time.time()
    return Reply(
        reply_id=reply_id,
        account="demo",
        openid=openid,
        in_reply_to="msg:1",
        text=text,
        model="fake",
        created_at=now,
        received_at=now - 1,
    )


def verdict(path: str, reply_id: str = "r1", openid: str = "oUser") -> Delivery:
    return Delivery(reply_id=reply_id, account="demo", openid=openid, path=path, delivered_at=time.time())


@pytest.fixture
def sender():
    return FakeSender()


@pytest.fixture
async def harness(request):
    overrides = getattr(request, "param", {})  # settings of a test, by indirect parametrisation
    return AgentHarness(Settings(partitions=1, outbound_max_part_bytes=PART_BYTES, **overrides))


@pytest.fixture
def outbox(harness):
    return Outbox(harness.app, harness.settings)


@pytest.fixture(autouse=True)
async def running(harness, outbox, sender):
    settings = harness.settings
    work = outbound.Outbound(harness.topics, outbox, {"demo": DEMO}, settings, sender, harness.metrics)
    agent = outbound.install(harness.app, work, Acks(harness.app))
    async with harness.running(agent):
        yield
    assert sender.closed, "the agent closes the sender when it stops"


async def put(harness: AgentHarness, record: Reply | Delivery, timestamp: float | None = None) -> None:
    topic = REPLIES.name if isinstance(record, Reply) else DELIVERIES.name
    await harness.put(record.dumps(), key=user_key(record.account, record.openid), topic=topic, timestamp=timestamp)


def recorded(harness: AgentHarness) -> list[tuple[str, str]]:
    """The delivery records the agent wrote: (reply id, path)."""
    return [(d.reply_id, d.path) for d in harness.values(DELIVERIES.name, Delivery)]


def messages(harness: AgentHarness, path: str, outcome: str) -> float:
    return harness.metric("wxstream_outbound_messages_total", account="demo", path=path, outcome=outcome)


# --- the reply and the ingress's verdict, in either order -----------------------------


async def test_a_reply_then_deferred_is_sent(harness, sender):
    await put(harness, reply())
    assert sender.calls == [], "waits for the ingress's verdict"
    await put(harness, verdict(states.DEFERRED))

    assert sender.calls == [("text", "oUser", "Your answer.")]
    assert recorded(harness) == [("r1", states.API)]
    assert harness.produced(DELIVERIES.name)[0].key == USER.encode()
    assert messages(harness, "api", "sent") == 1


async def test_deferred_then_the_reply_shows_typing_then_sends(harness, sender):
    await put(harness, verdict(states.DEFERRED))
    await put(harness, reply())

    assert sender.calls == [("typing", "oUser"), ("text", "oUser", "Your answer.")]
    assert recorded(harness) == [("r1", states.API)]


async def test_records_stamped_across_a_window_boundary_find_the_newest_state(harness, sender):
    # The ingress stamps its verdict before the worker stamps the reply; both are read
    # after the boundary. The outbox follows the worker's clock, not the stamps.
    boundary = time.time() // harness.settings.outbound_state_ttl_s * harness.settings.outbound_state_ttl_s
    await put(harness, reply(), timestamp=boundary + 0.005)
    await put(harness, verdict(states.DEFERRED), timestamp=boundary - 0.005)
    await put(harness, verdict(states.DEFERRED), timestamp=boundary - 0.1)  # a repeat, stamped earlier still

    assert sender.texts == ["Your answer."]
    assert recorded(harness) == [("r1", states.API)]


async def test_one_users_slow_send_does_not_hold_up_another_users_reply(harness, sender):
    slow = asyncio.Event()
    send_text = sender.send_text

    async def slow_for_the_first_user(account, openid, text):
        if openid == "oUser":
            await slow.wait()
        return await send_text(account, openid, text)

    sender.send_text = slow_for_the_first_user
    await put(harness, reply())
    first = asyncio.ensure_future(put(harness, verdict(states.DEFERRED)))
    await put(harness, reply("Yours.", reply_id="r2", openid="oOther"))
    second = asyncio.ensure_future(put(harness, verdict(states.DEFERRED, reply_id="r2", openid="oOther")))
    async with asyncio.timeout(5):
        while sender.texts != ["Yours."]:  # sent while the first user's send hangs
            await asyncio.sleep(0.01)
    slow.set()
    await asyncio.gather(first, second)

    assert sender.texts == ["Yours.", "Your answer."]
    assert sorted(recorded(harness)) == [("r1", states.API), ("r2", states.API)]


@pytest.mark.parametrize("harness", [{"outbound_typing": False}], indirect=True)
async def test_no_typing_indicator_when_it_is_switched_off(harness, sender):
    await put(harness, verdict(states.DEFERRED))
    await put(harness, reply())

    assert sender.calls == [("text", "oUser", "Your answer.")]


@pytest.mark.parametrize("reply_first", [True, False], ids=["reply-first", "verdict-first"])
async def test_a_passive_reply_is_not_sent(harness, sender, reply_first):
    records = [reply(), verdict(states.PASSIVE)]
    for record in records if reply_first else reversed(records):
        await put(harness, record)
    await put(harness, verdict(states.DEFERRED))  # the sender's own timeout, too late

    assert sender.calls == []
    assert recorded(harness) == []
    assert messages(harness, "passive", "sent") == 1
    # The passive reply's latency counts when the reply is known (it comes first on the topic).
    assert harness.metric("wxstream_reply_latency_seconds_count", path="passive") == (1 if reply_first else 0)


async def test_dead_letter_series_start_at_zero_so_that_alerts_see_the_first(harness):
    registry = harness.metrics.registry
    assert registry.get_sample_value("wxstream_dead_letters_total", {"reason": "schema"}) == 0
    labels = {"account": "demo", "path": "api", "outcome": "dead_letter"}
    assert registry.get_sample_value("wxstream_outbound_messages_total", labels) == 0


async def test_a_reply_seen_again_is_skipped(harness, sender):
    await put(harness, reply())
    await put(harness, verdict(states.DEFERRED))
    await put(harness, reply())

    assert sender.texts == ["Your answer."]
    assert messages(harness, "api", "skipped_duplicate") == 1


async def test_a_long_reply_goes_in_parts_in_order(harness, sender):
    text = "The first sentence. Then a second one. And a third, longer than the others."
    await put(harness, reply(text))
    await put(harness, verdict(states.DEFERRED))

    parts = split_text(text, PART_BYTES)
    assert len(parts) > 2
    assert sender.texts == list(parts)
    assert "".join(sender.texts) == text
    assert recorded(harness) == [("r1", states.API)]


# --- WeChat's "not now" and "never" ----------------------------------------------------


async def test_a_mailbox_outcome_keeps_the_rest_of_the_reply_in_the_mailbox(harness, outbox, sender):
    text = "The first sentence. Then a second one. And a third, longer than the others."
    parts = split_text(text, PART_BYTES)
    sender.outcomes = [Outcome(Action.SENT), Outcome(Action.MAILBOX, "errcode 45015")]
    await put(harness, reply(text))
    await put(harness, verdict(states.DEFERRED))

    assert sender.texts == list(parts[:2])
    assert outbox.mailboxes[USER] == Mailbox(items=[MailItem(reply_id="r1", text="".join(parts[1:]))])
    [record] = harness.values(DELIVERIES.name, Delivery)
    assert (record.path, record.reason) == (states.MAILBOX, "errcode 45015")
    assert messages(harness, "mailbox", "mailboxed") == 1


async def test_a_dead_letter_outcome_goes_to_the_dead_letters_with_the_reason(harness, sender):
    sender.outcomes = [Outcome(Action.DEAD_LETTER, "errcode 45009")]
    await put(harness, reply())
    await put(harness, verdict(states.DEFERRED))

    [letter] = harness.values(DEAD_LETTERS.name, DeadLetter)
    assert letter.reason == "delivery: errcode 45009"
    assert json.loads(letter.payload)["unsent"] == "Your answer."
    assert json.loads(letter.payload)["reply"]["reply_id"] == "r1"
    [record] = harness.values(DELIVERIES.name, Delivery)
    assert (record.path, record.reason) == (states.DEAD_LETTER, "errcode 45009")
    assert harness.metric("wxstream_dead_letters_total", reason="delivery") == 1


async def test_a_dead_letter_is_out_before_the_entry_says_so(harness, outbox, sender):
    # A crash between the two then gives a second letter, not none.
    letters_when_marked = []
    persisted = outbox.persisted

    async def watched() -> None:
        if latest(outbox, "r1").state == states.DEAD_LETTER:
            letters_when_marked.append(len(harness.values(DEAD_LETTERS.name, DeadLetter)))
        await persisted()

    outbox.persisted = watched
    sender.outcomes = [Outcome(Action.DEAD_LETTER, "errcode 45009")]
    await put(harness, reply())
    await put(harness, verdict(states.DEFERRED))

    assert letters_when_marked == [1]


async def test_a_part_being_sent_when_the_worker_died_is_not_sent_again(harness, outbox, sender):
    text = "The first sentence. Then a second one. And a third, longer than the others."
    parts = split_text(text, PART_BYTES)
    now = time.time()
    # As the changelog restores it: part 1 was sent, part 2 was being sent.
    left = OutboxEntry(reply=reply(text), verdict=states.DEFERRED, parts_sent=1, attempting=1)
    outbox.entries_table.raw_update({("r1", outbox.entries_table.window.current(now)): left})
    await put(harness, verdict(states.DEFERRED), timestamp=now)  # read again after the restart

    assert sender.calls == []
    [letter] = harness.values(DEAD_LETTERS.name, DeadLetter)
    assert letter.reason.startswith(f"delivery: interrupted while sending part 2 of {len(parts)}")
    assert json.loads(letter.payload)["unsent"] == "".join(parts[1:])
    assert recorded(harness) == [("r1", states.DEAD_LETTER)]


async def test_an_undecodable_record_goes_to_the_dead_letters(harness, sender):
    await harness.put(b"{not json", key=USER, topic=REPLIES.name)
    await put(harness, reply())
    await put(harness, verdict(states.DEFERRED))

    [letter] = harness.values(DEAD_LETTERS.name, DeadLetter)
    assert (letter.source_topic, letter.reason.split(":")[0]) == (REPLIES.name, "undecodable")
    assert sender.texts == ["Your answer."], "the partition goes on"


async def test_a_failure_while_delivering_stops_the_worker_with_the_record_unacknowledged(harness, sender):
    async def broken(account, openid, text):
        raise ValueError("the API client broke")

    sender.send_text = broken
    await put(harness, reply())

    with pytest.raises(ValueError, match="the API client broke"):
        await put(harness, verdict(states.DEFERRED))
    assert harness.values(DEAD_LETTERS.name, DeadLetter) == [], "not taken for an undecodable record"
