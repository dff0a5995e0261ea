"""What `wxstream tail` reads: where it starts, what it keeps, and the last N in time order."""

from __future__ import annotations

import argparse

import pytest

from app.datatools.arguments import add_tail_arguments
from app.datatools.command import UsageError
from app.datatools.records import RecordFilter, TopicRecord, UnknownTopic
from app.datatools.tail import DEFAULT_LAST, newest, plan_tail
from app.topics import CLEAN_EVENTS, RAW_EVENTS

NOW = 1_800_000_000.0


def plan(*argv: str):
    parser = argparse.ArgumentParser()
    add_tail_arguments(parser)
    return plan_tail(parser.parse_args(argv), NOW)


def test_by_default_it_shows_the_last_ten_and_follows():
    tail = plan("raw")
    assert tail.spec is RAW_EVENTS
    assert (tail.last, tail.from_beginning, tail.since.since, tail.follow, tail.as_json) == (DEFAULT_LAST, False, None, True, False)


def test_it_starts_where_it_is_told():
    assert plan("clean", "--from-beginning").last is None
    since = plan(CLEAN_EVENTS.name, "--since", "10m", "--no-follow")
    assert (since.spec, since.last, since.since.since, since.follow) == (CLEAN_EVENTS, None, NOW - 600, False)
    assert plan("raw", "-n", "0").last == 0


def test_starting_points_exclude_each_other():
    with pytest.raises(SystemExit):
        plan("raw", "-n", "5", "--since", "10m")


def test_filters_are_passed_on():
    tail = plan("raw", "--account", "shop", "--user", "o_1", "--type", "text", "--json")
    assert tail.filter == RecordFilter(account="shop", openid="o_1", type="text")
    assert tail.as_json
    assert plan("raw", "--openid", "o_2").filter.openid == "o_2"


def test_bad_arguments_say_what_is_wrong():
    with pytest.raises(UnknownTopic):
        plan("nope")
    with pytest.raises(UsageError, match="--type"):
        plan("replies", "--type", "text")
    with pytest.raises(UsageError, match="-n"):
        plan("raw", "-n", "-1")


def test_it_keeps_records_since_its_start_that_match():
    tail = plan("raw", "--since", "1m", "--account", "shop")

    def at(seconds_ago: float, key: str) -> TopicRecord:
        return TopicRecord(RAW_EVENTS.name, 0, 0, int((NOW - seconds_ago) * 1000), key, b"")

    assert tail.keep(at(30, "shop:o_1"))
    assert not tail.keep(at(90, "shop:o_1"))
    assert not tail.keep(at(30, "demo:o_1"))


def test_the_newest_records_of_all_partitions_in_time_order():
    def rec(partition: int, offset: int, ms: int) -> TopicRecord:
        return TopicRecord(RAW_EVENTS.name, partition, offset, ms, None, b"")

    p0 = [rec(0, 0, 10), rec(0, 1, 40)]
    p1 = [rec(1, 5, 20), rec(1, 6, 30), rec(1, 7, 50)]
    assert [(r.partition, r.offset) for r in newest([p0, p1], 3)] == [(1, 6), (0, 1), (1, 7)]
    assert len(newest([p0, p1], 10)) == 5
    assert newest([p0, p1], 0) == []
