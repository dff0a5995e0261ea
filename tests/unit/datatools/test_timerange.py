"""`--since` / `--until`: durations back from now, dates and times, and bad input."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from app.datatools.timerange import TimeRange, TimeRangeError, parse_instant, parse_range

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    "text, seconds_ago",
    [("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("1.5h", 5400), ("10M", 600), ("now", 0)],
)
def test_durations_count_back_from_now(text, seconds_ago):
    assert parse_instant(text, NOW) == NOW - seconds_ago


def test_a_date_and_time_without_a_zone_is_local_time():
    assert parse_instant("2026-11-25T10:00", NOW) == datetime(2026, 11, 25, 10, 0).timestamp()
    assert parse_instant("2026-11-25 10:00:30", NOW) == datetime(2026, 11, 25, 10, 0, 30).timestamp()
    assert parse_instant("2026-11-25", NOW) == datetime(2026, 11, 25).timestamp()


def test_a_date_and_time_with_a_zone_is_that_zone():
    utc = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc).timestamp()
    assert parse_instant("2026-11-25T02:00Z", NOW) == utc
    assert parse_instant("2026-11-25T10:00+08:00", NOW) == utc


@pytest.mark.parametrize("text", ["", "yesterday", "10", "10x", "m10", "-5m", "2026-13-01"])
def test_anything_else_is_refused_with_the_accepted_forms(text):
    with pytest.raises(TimeRangeError, match="duration back from now"):
        parse_instant(text, NOW)


def test_a_range_reads_both_ends_against_the_same_now():
    assert parse_range("10m", "5m", NOW) == TimeRange(NOW - 600, NOW - 300)
    assert parse_range(None, None, NOW) == TimeRange()
    assert parse_range("10m", None, NOW) == TimeRange(NOW - 600, None)


def test_an_empty_or_inverted_range_is_refused():
    with pytest.raises(TimeRangeError, match="not before"):
        parse_range("5m", "10m", NOW)
    with pytest.raises(TimeRangeError, match="not before"):
        parse_range("5m", "5m", NOW)


def test_a_range_holds_its_start_but_not_its_end():
    bounds = TimeRange(100.0, 200.0)
    assert bounds.since_ms == 100_000
    assert not bounds.contains_ms(99_999)
    assert bounds.contains_ms(100_000)
    assert bounds.contains_ms(199_999)
    assert not bounds.contains_ms(200_000)
    assert TimeRange().contains_ms(0) and TimeRange().since_ms is None
