"""The delivery state of a reply: the API sends only after a deferred verdict, never after
a passive one, and never twice."""

from __future__ import annotations

from app.outbound.outbox import DEFERRED, OPEN, PASSIVE, OutboxEntry, Step, on_reply, on_verdict
from app.topics import Reply

REPLY = Reply(
    reply_id="r1", account="demo", openid="oU", in_reply_to="msg:1", text="hi", model="echo", created_at=1.0
)


def test_a_reply_waits_for_the_verdict():
    entry, step = on_reply(OutboxEntry(), REPLY)
    assert step is Step.WAIT and entry.reply == REPLY and entry.state == OPEN


def test_deferred_after_the_reply_delivers():
    entry, _ = on_reply(OutboxEntry(), REPLY)
    entry, step = on_verdict(entry, DEFERRED)
    assert step is Step.DELIVER and entry.verdict == DEFERRED


def test_deferred_before_the_reply_shows_typing_once_then_delivers_on_arrival():
    entry, step = on_verdict(OutboxEntry(), DEFERRED)
    assert step is Step.TYPING and entry.typing
    entry, step = on_verdict(entry, DEFERRED)
    assert step is Step.NOTHING
    entry, step = on_reply(entry, REPLY)
    assert step is Step.DELIVER


def test_passive_before_or_after_the_reply_means_no_api_send():
    entry, step = on_verdict(OutboxEntry(), PASSIVE)
    assert step is Step.NOTHING and entry.state == PASSIVE
    entry, step = on_reply(entry, REPLY)
    assert step is Step.NOTHING and entry.state == PASSIVE
    entry, step = on_reply(entry, REPLY)
    assert step is Step.DUPLICATE
    entry, step = on_verdict(entry, DEFERRED)
    assert step is Step.NOTHING


def test_passive_wins_over_a_timeout_deferral_while_nothing_was_sent():
    entry, step = on_verdict(OutboxEntry(), DEFERRED)  # the sender's own timeout, reply not here
    entry, step = on_verdict(entry, PASSIVE)
    assert entry.state == PASSIVE
    assert on_reply(entry, REPLY)[1] is Step.NOTHING


def test_passive_after_sending_started_changes_nothing():
    entry, _ = on_reply(OutboxEntry(), REPLY)
    entry, _ = on_verdict(entry, DEFERRED)
    entry = entry.derive(attempting=0)
    same, step = on_verdict(entry, PASSIVE)
    assert same is entry and step is Step.NOTHING


def test_the_first_reply_text_counts():
    entry, _ = on_reply(OutboxEntry(), REPLY)
    entry, _ = on_reply(entry, REPLY.derive(text="different after a crash"))
    assert entry.reply.text == "hi"


def test_a_handled_reply_is_a_duplicate():
    entry = OutboxEntry(reply=REPLY, verdict=DEFERRED, state="api", parts_sent=1)
    assert on_reply(entry, REPLY)[1] is Step.DUPLICATE
    assert on_verdict(entry, DEFERRED)[1] is Step.NOTHING


def test_entries_round_trip_through_json():
    entry = OutboxEntry(reply=REPLY, verdict=DEFERRED, parts_sent=2, attempting=2)
    again = OutboxEntry.loads(entry.dumps())
    assert again.reply == REPLY and again.attempting == 2 and not again.empty
    assert OutboxEntry().empty


def test_a_deferral_read_again_after_a_crash_resumes_delivery():
    entry = OutboxEntry(reply=REPLY, verdict=DEFERRED, parts_sent=1)
    same, step = on_verdict(entry, DEFERRED)
    assert step is Step.DELIVER and same.parts_sent == 1
