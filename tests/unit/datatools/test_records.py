"""Topic aliases, decoding with each topic's record type, filters, and the renderings."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from app.datatools.records import (
    ALIASES,
    RecordFilter,
    UnknownTopic,
    alias_of,
    decode,
    format_json,
    format_line,
    resolve_topic,
)
from app.topics import CLEAN_EVENTS, DEAD_LETTERS, DELIVERIES, RAW_EVENTS, REPLIES, TOPICS

T_MS = 1_800_000_000_123


def raw_value(msg_type="text", **fields) -> bytes:
    fields = {"FromUserName": "o_1", "CreateTime": "1700000000", "MsgType": msg_type, **fields}
    return json.dumps(
        {"account": "shop", "openid": "o_1", "msg_type": msg_type, "dedupe_key": "msg:7", "fields": fields, "received_at": 1.5}
    ).encode()


def clean_value(msg_type="event", event="subscribe") -> bytes:
    return json.dumps(
        {
            "schema": "wxstream.event/1", "account": "shop", "openid": "o_1", "msg_type": msg_type, "event": event,
            "dedupe_key": "evt:o_1:1", "fields": {"Event": event, "EventKey": "qrscene_42"}, "event_time": 1,
            "ingest_time": 2.0,
        }
    ).encode()


def record(spec=RAW_EVENTS, value=None, key=b"shop:o_1", partition=1, offset=42):
    return decode(spec, partition, offset, T_MS, key, raw_value() if value is None else value)


def test_every_topic_has_one_alias_and_resolves_by_either_name():
    assert sorted(spec.name for spec in ALIASES.values()) == sorted(spec.name for spec in TOPICS)
    for alias, spec in ALIASES.items():
        assert resolve_topic(alias) is spec
        assert resolve_topic(spec.name) is spec
        assert alias_of(spec.name) == alias
    assert alias_of("wxstream-seen-v1-changelog") is None


def test_an_unknown_topic_names_the_known_ones():
    with pytest.raises(UnknownTopic, match=r"raw \(wxstream.events.raw.v1\)"):
        resolve_topic("rawz")


def test_records_decode_with_their_topics_record_type():
    raw = record()
    assert raw.problem is None and raw.record.dedupe_key == "msg:7"
    assert (raw.account, raw.openid, raw.kind) == ("shop", "o_1", "text")
    clean = record(CLEAN_EVENTS, clean_value())
    assert clean.kind == "event/subscribe"
    event = record(value=raw_value("event", Event="CLICK", EventKey="menu_1"))
    assert event.kind == "event/CLICK"


def test_an_openid_may_hold_a_colon_and_a_key_may_be_missing():
    assert record(key=b"shop:o:1").openid == "o:1"
    keyless = record(key=None)
    assert keyless.account is None and keyless.openid is None and keyless.key is None


@pytest.mark.parametrize(
    "value, problem",
    [
        (b"garbage", "not JSON"),
        (b"", "not JSON"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (b'{"account": "shop"}', "not a RawEvent"),
        (raw_value().replace(b'"fields": {', b'"fields": "x", "f": {'), "not a RawEvent: fields is not an object"),
        (raw_value().replace(b'"CreateTime": "', b'"CreateTime": "x'), "not a valid RawEvent: CreateTime"),
    ],
)
def test_an_undecodable_value_is_a_record_with_its_problem(value, problem):
    bad = record(value=value)
    assert bad.record is None and bad.problem.startswith(problem)
    assert bad.kind == "undecodable"
    assert problem in format_line(bad)


def test_fields_unknown_to_this_version_are_kept_in_the_json():
    value = json.loads(raw_value())
    value["added_later"] = {"x": 1}
    rendered = json.loads(format_json(record(value=json.dumps(value).encode())))
    assert rendered["value"]["added_later"] == {"x": 1}


def test_json_lines_say_where_the_record_is():
    rendered = json.loads(format_json(record()))
    assert rendered["topic"] == RAW_EVENTS.name
    assert (rendered["partition"], rendered["offset"], rendered["key"]) == (1, 42, "shop:o_1")
    assert rendered["timestamp"] == T_MS / 1000
    assert rendered["value"]["dedupe_key"] == "msg:7"
    assert json.loads(format_json(record(value=b"garbage")))["value"] == "garbage"


def test_a_line_shows_time_position_key_type_and_main_fields():
    line = format_line(record(value=raw_value(Content="hello\nthere")))
    when = datetime.fromtimestamp(T_MS / 1000).isoformat(sep=" ", timespec="milliseconds")
    assert line == f"{when}  1@42  shop:o_1  text  msg:7 'hello\\nthere'"


@pytest.mark.parametrize(
    "spec, value, shown",
    [
        (CLEAN_EVENTS, clean_value(), "evt:o_1:1 'qrscene_42'"),
        (
            REPLIES,
            {"reply_id": "r1", "account": "shop", "openid": "o_1", "in_reply_to": "msg:7", "text": "hi", "model": "echo", "created_at": 1.0},
            "r1 re msg:7 by echo 'hi'",
        ),
        (
            DELIVERIES,
            {"reply_id": "r1", "account": "shop", "openid": "o_1", "path": "passive", "delivered_at": 1.0},
            "r1 via passive",
        ),
        (
            DEAD_LETTERS,
            {"source_topic": RAW_EVENTS.name, "partition": 0, "offset": 9, "reason": "schema: x", "payload": "{}", "at": 1.0},
            f"{RAW_EVENTS.name}[0]@9 schema: x",
        ),
    ],
    ids=lambda x: getattr(x, "name", None),
)
def test_each_record_type_shows_its_main_fields(spec, value, shown):
    value = value if isinstance(value, bytes) else json.dumps(value).encode()
    line = format_line(record(spec, value))
    assert line.endswith(shown)


def test_long_texts_are_cut_to_keep_one_line():
    line = format_line(record(value=raw_value(Content="x" * 500)))
    assert len(line) < 160 and line.endswith("…")


@pytest.mark.parametrize(
    "filter, matches",
    [
        (RecordFilter(), True),
        (RecordFilter(account="shop"), True),
        (RecordFilter(account="demo"), False),
        (RecordFilter(openid="o_1"), True),
        (RecordFilter(openid="o_2"), False),
        (RecordFilter(account="shop", openid="o_1", type="subscribe"), True),
        (RecordFilter(type="SUBSCRIBE"), True),
        (RecordFilter(type="event"), True),
        (RecordFilter(type="text"), False),
    ],
)
def test_filters_match_account_user_and_message_type_or_event(filter, matches):
    assert filter.matches(record(CLEAN_EVENTS, clean_value())) is matches


def test_a_type_filter_matches_message_types():
    assert RecordFilter(type="text").matches(record())
    assert not RecordFilter(type="voice").matches(record())
    assert not RecordFilter(type="event").matches(record())
