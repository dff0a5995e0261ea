"""`wxstream replay`: the range and filters it replays, its counts, progress and summary."""

from __future__ import annotations

import argparse
import json

from app.datatools.arguments import add_replay_arguments
from app.datatools.records import RecordFilter, decode
from app.datatools.replay import ReplayTally, plan_replay, summary
from app.datatools.timerange import TimeRange
from app.topics import RAW_EVENTS

NOW = 1_800_000_000.0


def plan(*argv: str):
    parser = argparse.ArgumentParser()
    add_replay_arguments(parser)
    return plan_replay(parser.parse_args(argv), NOW)


def raw(account: str, msg_type: str, event: str = ""):
    fields = {"FromUserName": "o_1", "CreateTime": "1", "MsgType": msg_type, **({"Event": event} if event else {})}
    value = {"account": account, "openid": "o_1", "msg_type": msg_type, "dedupe_key": "k", "fields": fields, "received_at": 1.0}
    return decode(RAW_EVENTS, 0, 0, 0, f"{account}:o_1".encode(), json.dumps(value).encode())


def test_the_range_ends_now_unless_told_and_filters_are_passed_on():
    replay = plan("--since", "1h", "--account", "shop", "--type", "text")
    assert replay.range == TimeRange(NOW - 3600, NOW)
    assert replay.filter == RecordFilter(account="shop", type="text")
    assert not replay.dry_run
    assert plan("--since", "2h", "--until", "1h", "--dry-run").range == TimeRange(NOW - 7200, NOW - 3600)
    assert plan("--since", "2h", "--dry-run").dry_run


def tally_of_three() -> ReplayTally:
    tally = ReplayTally(to_read=10, read=7, undecodable=1)
    for record in (raw("shop", "text"), raw("shop", "text"), raw("demo", "event", "subscribe")):
        tally.select(record)
    return tally


def test_events_are_counted_per_account_and_type():
    tally = tally_of_three()
    assert tally.total == 3
    assert dict(tally.selected) == {("shop", "text"): 2, ("demo", "event/subscribe"): 1}
    table = tally.table().splitlines()
    assert table[0].split() == ["account", "type", "events"]
    assert [row.split() for row in table[1:]] == [["demo", "event/subscribe", "1"], ["shop", "text", "2"]]


def test_acknowledgements_and_failures_come_from_the_producer():
    tally = tally_of_three()
    tally.ack(object())
    tally.ack(object())
    tally.fail(TimeoutError("no answer"))
    assert tally.acked == 2 and tally.failed == ["TimeoutError: no answer"]
    assert tally.progress_line() == "replay: read 7/10 records, 3 selected, 2 produced"


def test_the_summary_says_what_was_read_selected_and_produced():
    replay = plan("--since", "1h")
    tally = tally_of_three()
    for _ in range(3):
        tally.ack(None)
    text = summary(replay, tally, interrupted=False)
    assert f"{RAW_EVENTS.name} from " in text
    assert "7 records read, 3 events selected, 1 undecodable skipped" in text
    assert text.splitlines()[-1] == f"replay: 3 of 3 events produced to {RAW_EVENTS.name} (acks=all)"


def test_a_dry_run_produces_nothing_and_an_interrupted_run_says_so():
    dry = summary(plan("--since", "1h", "--dry-run"), tally_of_three(), interrupted=False)
    assert "dry run, nothing produced" in dry and "acks=all" not in dry
    interrupted = summary(plan("--since", "1h"), tally_of_three(), interrupted=True)
    assert interrupted.splitlines()[-1] == "replay: interrupted; running it again is safe"
    assert "(no events)" in summary(plan("--since", "1h"), ReplayTally(), interrupted=False)
