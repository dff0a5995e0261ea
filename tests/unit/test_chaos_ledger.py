"""The chaos ledger: what users sent against what they received, by either path; the
session check; the summary table."""

from __future__ import annotations

import pytest

from chaos.ledger import Got, Sent, reconcile
from chaos.report import table
from chaos.result import Check, Findings, ScenarioResult
from chaos.sessions import session_problems

FALLBACK = "Sorry, I cannot answer right now."


def sent(openid: str, msg_id: int, *, accepted: bool = True, account: str = "shop") -> Sent:
    return Sent(account, openid, msg_id, f"{openid} says {msg_id}", accepted)


def passive(message: Sent, text: str | None = None) -> Got:
    return Got(message.account, message.openid, "passive", message.text if text is None else text, message.msg_id)


def api(message: Sent, text: str | None = None) -> Got:
    return Got(message.account, message.openid, "api", message.text if text is None else text)


def test_each_message_answered_once_by_either_path():
    a, b, c = sent("o1", 1), sent("o1", 2), sent("o2", 3)
    ledger = reconcile([a, b, c], [passive(a), api(b), api(c)])
    counts = ledger.counts
    assert (counts.sent, counts.accepted, counts.answered_once, counts.answered_twice, counts.lost) == (3, 3, 3, 0, 0)
    assert counts.ok and ledger.settled
    assert [ledger.kind_of(m) for m in (a, b, c)] == ["echo"] * 3


def test_an_answer_by_both_paths_is_answered_twice():
    a = sent("o1", 1)
    ledger = reconcile([a], [passive(a), api(a)])
    assert ledger.counts.answered_twice == 1 and ledger.answered_twice == [a]
    assert not ledger.counts.ok


def test_an_accepted_message_without_answer_is_lost_and_a_refused_one_is_not():
    taken, refused = sent("o1", 1), sent("o1", 2, accepted=False)
    ledger = reconcile([taken, refused], [])
    assert ledger.lost == [taken]
    assert (ledger.counts.accepted, ledger.counts.lost, ledger.counts.answered_once) == (1, 1, 0)
    assert not ledger.settled


def test_a_refused_message_that_was_answered_anyway_counts_as_answered():
    refused = sent("o1", 1, accepted=False)
    assert reconcile([refused], [api(refused)]).counts.answered_once == 1


def test_fallback_by_api_fills_the_users_earliest_unanswered_message():
    a, b, c = sent("o1", 1), sent("o1", 2), sent("o1", 3)
    # b's fallback arrives by the API before a's echo is known; c is answered passively
    ledger = reconcile([a, b, c], [api(b, FALLBACK), passive(c), api(a)], generic=[FALLBACK])
    assert ledger.kind_of(a) == "echo" and ledger.kind_of(b) == "generic" and ledger.kind_of(c) == "echo"
    assert ledger.counts.answered_once == 3


def test_a_passive_fallback_answers_the_message_it_names():
    a, b = sent("o1", 1), sent("o1", 2)
    ledger = reconcile([a, b], [passive(b, FALLBACK), passive(a, FALLBACK)], generic=[FALLBACK])
    assert [ledger.answers_to(m)[0].path for m in (a, b)] == ["passive", "passive"]
    assert ledger.counts.answered_once == 2


def test_a_surplus_fallback_is_a_second_answer():
    a, b = sent("o1", 1), sent("o1", 2)
    ledger = reconcile([a, b], [api(a, FALLBACK), api(b, FALLBACK), api(b, FALLBACK)], generic=[FALLBACK])
    assert ledger.answered_twice == [b]


def test_replies_owed_from_the_mailbox_count_for_each_message_they_bundle():
    a, b, c = sent("o1", 1), sent("o1", 2), sent("o1", 3)
    bundle = passive(c, f"{a.text}\n\n{FALLBACK}\n\n{c.text}")
    ledger = reconcile([a, b, c], [bundle], generic=[FALLBACK])
    assert [ledger.kind_of(m) for m in (a, b, c)] == ["echo", "generic", "echo"]
    assert ledger.counts.answered_once == 3 and ledger.counts.stray == 0


def test_a_text_with_a_blank_line_that_is_no_bundle_stays_whole():
    a = sent("o1", 1)
    ledger = reconcile([a], [api(a, f"{a.text}\n\nand something else")])
    assert ledger.lost == [a] and len(ledger.stray) == 1


def test_replies_nobody_asked_for_are_stray():
    a = sent("o1", 1)
    other_user = Got("shop", "o9", "api", a.text)
    received = [api(a), api(a, "something else"), other_user, Got("shop", "o9", "api", FALLBACK)]
    ledger = reconcile([a], received, generic=[FALLBACK])
    assert len(ledger.stray) == 3 and ledger.counts.stray == 3 and not ledger.counts.ok
    assert ledger.counts.answered_once == 1


def test_a_passive_reply_naming_another_users_message_does_not_count_for_it():
    a = sent("o1", 1)
    ledger = reconcile([a], [Got("shop", "o2", "passive", a.text, a.msg_id)])
    assert ledger.lost == [a] and len(ledger.stray) == 1


def test_the_same_msg_id_twice_is_refused():
    with pytest.raises(ValueError, match="MsgId 1"):
        reconcile([sent("o1", 1), sent("o2", 1)], [])


def turns_for(*messages: Sent, answers: dict[int, str] | None = None) -> list[dict[str, str]]:
    turns = []
    for m in messages:
        turns.append({"role": "user", "text": m.text, "ref": f"msg:{m.msg_id}"})
        turns.append({"role": "assistant", "text": (answers or {}).get(m.msg_id, m.text), "ref": ""})
    return turns


def test_an_intact_session_holds_the_last_answered_messages_in_order():
    messages = [sent("o1", i) for i in range(1, 6)]
    assert session_problems(messages, turns_for(*messages), max_turns=10) == []
    assert session_problems(messages, turns_for(*messages[-3:]), max_turns=3) == []


def test_a_session_that_lost_turns_repeats_one_or_reorders_them_is_reported():
    a, b, c = sent("o1", 1), sent("o1", 2), sent("o1", 3)
    assert "missing ['msg:1']" in session_problems([a, b, c], turns_for(b, c), max_turns=10)[0]
    repeated = session_problems([a, b], turns_for(a, b, b), max_turns=10)
    assert any("two turns: msg:2" in p for p in repeated)
    assert session_problems([a, b], turns_for(b, a), max_turns=10) == [
        "holds 2 user turns, expected the last 2 answered messages: out of order"
    ]
    assert "answered with" in session_problems([a], turns_for(a, answers={1: "nope"}), max_turns=10)[0]
    assert "pairs" in session_problems([a], turns_for(a)[:1], max_turns=10)[0]


def result(name: str, lost: int = 0, checks: tuple[Check, ...] = ()) -> ScenarioResult:
    counts = reconcile([sent("o1", 1)], [] if lost else [api(sent("o1", 1))]).counts
    return ScenarioResult.of(name, name, Findings(counts, checks, more_sent=2, rejected=2 if checks else None), 12.0)


def test_the_summary_table_has_a_row_per_scenario_and_says_why_one_failed():
    ok = result("worker-kill")
    bad = result("hostile", lost=1, checks=(Check("hostile requests refused", False, "XXE: 200"),))
    text = table([ok, bad])
    lines = text.splitlines()
    assert lines[0].split() == ["scenario", "sent", "accepted", "once", "twice", "lost", "rejected", "result"]
    assert lines[1].split() == ["worker-kill", "3", "1", "1", "0", "0", "-", "PASS", "(12", "s)"]
    assert lines[2].split()[:8] == ["hostile", "3", "1", "0", "0", "1", "2", "FAIL"]
    assert "FAIL hostile: hostile requests refused: XXE: 200" in text
    assert ok.passed and not bad.passed
    assert bad.as_dict()["passed"] is False
