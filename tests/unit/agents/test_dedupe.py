"""Raw events -> clean events: decoding, schema checks, the clean record, dead letters."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

from agents.deadletters import dead_letter
from agents.dedupe import PoisonEvent, clean_event, decode_raw
from app.topics import CLEAN_SCHEMA, CleanEvent, DeadLetter, RawEvent

FIELDS = {
    "ToUserName": "gh_account",
    "FromUserName": "oUser123",
    "CreateTime": "1714000000",
    "MsgType": "text",
    "Content": "你好",
    "MsgId": "1234567890123456",
}


def raw_dict(**changes) -> dict:
    value = {
        "account": "demo",
        "openid": "oUser123",
        "msg_type": "text",
        "dedupe_key": "msg:1234567890123456",
        "fields": dict(FIELDS),
        "received_at": 1714000001.25,
        "encrypted": True,
    }
    value.update(changes)
    return value


def encode(value) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def fields_with(**changes) -> dict:
    fields = dict(FIELDS)
    for name, value in changes.items():
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    return fields


# --- decode_raw ----------------------------------------------------------------------


def test_decodes_a_valid_raw_event():
    raw = decode_raw(encode(raw_dict()))
    assert isinstance(raw, RawEvent)
    assert raw.account == "demo"
    assert raw.openid == "oUser123"
    assert raw.msg_type == "text"
    assert raw.dedupe_key == "msg:1234567890123456"
    assert raw.fields == FIELDS
    assert raw.received_at == 1714000001.25
    assert raw.encrypted is True


def test_decodes_what_the_record_itself_serialises():
    original = RawEvent(**raw_dict())
    assert decode_raw(original.dumps()) == original


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"\xff\xfe\x00garbage", id="invalid-utf8"),
        pytest.param(b"not json at all", id="not-json"),
        pytest.param(b"", id="empty"),
        pytest.param(b'{"account": "demo"', id="truncated-json"),
    ],
)
def test_rejects_undecodable_values(value):
    with pytest.raises(PoisonEvent) as caught:
        decode_raw(value)
    assert str(caught.value).startswith("undecodable: ")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"[1, 2, 3]", id="json-array"),
        pytest.param(b"42", id="json-number"),
        pytest.param(b'"text"', id="json-string"),
        pytest.param(b"null", id="json-null"),
        pytest.param(b"{}", id="json-empty-object"),
        pytest.param(encode({k: v for k, v in raw_dict().items() if k != "fields"}), id="missing-fields"),
        pytest.param(encode({k: v for k, v in raw_dict().items() if k != "account"}), id="missing-account"),
        pytest.param(encode({k: v for k, v in raw_dict().items() if k != "received_at"}), id="missing-received-at"),
    ],
)
def test_rejects_json_that_is_not_a_raw_event(value):
    with pytest.raises(PoisonEvent) as caught:
        decode_raw(value)
    assert str(caught.value).startswith("schema: ")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(raw_dict(fields={**FIELDS, "CreateTime": 1714000000}), id="int-field-value"),
        pytest.param(raw_dict(fields={**FIELDS, "Content": None}), id="null-field-value"),
        pytest.param(raw_dict(fields={**FIELDS, "Content": ["a"]}), id="list-field-value"),
        pytest.param(raw_dict(fields=["FromUserName", "oUser"]), id="fields-not-a-mapping"),
        pytest.param(raw_dict(fields=None), id="fields-null"),
        pytest.param(raw_dict(fields=fields_with(FromUserName=None)), id="missing-FromUserName"),
        pytest.param(raw_dict(fields=fields_with(CreateTime=None)), id="missing-CreateTime"),
        pytest.param(raw_dict(fields=fields_with(MsgType=None)), id="missing-MsgType"),
        pytest.param(raw_dict(fields=fields_with(MsgType="")), id="empty-MsgType"),
        pytest.param(raw_dict(account=""), id="empty-account"),
        pytest.param(raw_dict(openid=""), id="empty-openid"),
        pytest.param(raw_dict(dedupe_key=""), id="empty-dedupe-key"),
        pytest.param(raw_dict(openid=123), id="openid-a-number"),
        pytest.param(raw_dict(account=["shop"]), id="account-a-list"),
        pytest.param(raw_dict(account="shop:2"), id="account-not-a-name"),
        pytest.param(raw_dict(received_at="x"), id="received_at-text"),
        pytest.param(raw_dict(received_at=True), id="received_at-bool"),
        pytest.param(raw_dict(fields=fields_with(CreateTime="yesterday")), id="CreateTime-word"),
        pytest.param(raw_dict(fields=fields_with(CreateTime="-1714000000")), id="CreateTime-negative"),
        pytest.param(raw_dict(fields=fields_with(CreateTime="1714000000.5")), id="CreateTime-fraction"),
        pytest.param(raw_dict(fields=fields_with(CreateTime=" 1714000000")), id="CreateTime-space"),
        pytest.param(raw_dict(fields=fields_with(CreateTime="²")), id="CreateTime-superscript"),
        pytest.param(raw_dict(fields=fields_with(CreateTime="١٧١٤٠٠٠٠٠٠")), id="CreateTime-arabic-indic"),
    ],
)
def test_rejects_schema_invalid_events(value):
    with pytest.raises(PoisonEvent) as caught:
        decode_raw(encode(value))
    assert str(caught.value).startswith("schema: ")


def test_missing_required_fields_are_named():
    with pytest.raises(PoisonEvent, match="FromUserName, CreateTime"):
        decode_raw(encode(raw_dict(fields=fields_with(FromUserName=None, CreateTime=None))))


def test_every_accepted_event_can_be_cleaned():
    # A CreateTime that passes decode_raw must also convert in clean_event.
    raw = decode_raw(encode(raw_dict(fields=fields_with(CreateTime="0"))))
    assert clean_event(raw, now=1.0).event_time == 0


# --- clean_event ---------------------------------------------------------------------


def test_clean_event_maps_every_field():
    raw = RawEvent(**raw_dict())
    clean = clean_event(raw, now=999.0)
    assert isinstance(clean, CleanEvent)
    assert clean.schema == CLEAN_SCHEMA == "wxstream.event/1"
    assert clean.account == "demo"
    assert clean.openid == "oUser123"
    assert clean.msg_type == "text"
    assert clean.event == ""
    assert clean.dedupe_key == "msg:1234567890123456"
    assert clean.fields == FIELDS
    assert clean.event_time == 1714000000
    assert isinstance(clean.event_time, int)
    assert clean.ingest_time == 1714000001.25


def test_clean_event_of_an_event_carries_its_name():
    fields = {**fields_with(Content=None, MsgId=None), "MsgType": "event", "Event": "subscribe"}
    raw = RawEvent(**raw_dict(msg_type="event", fields=fields, dedupe_key="evt:oUser123:1714000000"))
    clean = clean_event(raw, now=999.0)
    assert (clean.msg_type, clean.event, clean.event_time) == ("event", "subscribe", 1714000000)


def test_clean_event_without_received_at_uses_now():
    clean = clean_event(RawEvent(**raw_dict(received_at=0.0)), now=999.5)
    assert clean.ingest_time == 999.5


def test_clean_event_round_trips_through_its_serialiser():
    clean = clean_event(RawEvent(**raw_dict()), now=999.0)
    assert CleanEvent.loads(clean.dumps()) == clean
    assert json.loads(clean.dumps())["schema"] == "wxstream.event/1"


# --- dead_letter ---------------------------------------------------------------------


def fake_event(value, topic="wxstream.events.raw.v1", partition=3, offset=41):
    return SimpleNamespace(message=SimpleNamespace(topic=topic, partition=partition, offset=offset), value=value)


def test_dead_letter_records_where_and_why():
    before = time.time()
    letter = dead_letter(fake_event(b'{"not": "an event"}'), "schema: missing FromUserName")
    assert isinstance(letter, DeadLetter)
    assert letter.source_topic == "wxstream.events.raw.v1"
    assert letter.partition == 3
    assert letter.offset == 41
    assert letter.reason == "schema: missing FromUserName"
    assert letter.payload == '{"not": "an event"}'
    assert before <= letter.at <= time.time()


def test_dead_letter_keeps_utf8_text():
    assert dead_letter(fake_event("你好 😀".encode("utf-8")), "r").payload == "你好 😀"


def test_dead_letter_escapes_invalid_utf8():
    letter = dead_letter(fake_event(b"ok\xff\xfe\x80end"), "undecodable: UnicodeDecodeError")
    assert letter.payload == "ok\\xff\\xfe\\x80end"
    assert DeadLetter.loads(letter.dumps()) == letter  # the record itself is valid JSON


@pytest.mark.parametrize("value", [None, b""])
def test_dead_letter_of_an_empty_record(value):
    assert dead_letter(fake_event(value), "undecodable: JSONDecodeError").payload == ""


def test_dead_letter_of_a_poison_event():
    value = b"\x00\x01 binary"
    with pytest.raises(PoisonEvent) as caught:
        decode_raw(value)
    letter = dead_letter(fake_event(value, partition=0, offset=0), str(caught.value))
    assert letter.reason.startswith("undecodable: ")
    assert letter.payload == "\x00\x01 binary"


def test_clean_event_record_and_its_published_json_schema_agree():
    import json
    from pathlib import Path

    from app.topics import CLEAN_SCHEMA, CleanEvent

    schema = json.loads((Path(__file__).parents[3] / "docs/schemas/wxstream.event.v1.json").read_text())
    assert schema["$id"] == CLEAN_SCHEMA == schema["properties"]["schema"]["const"]
    record_fields = set(CleanEvent._options.fields)
    assert set(schema["required"]) == record_fields == set(schema["properties"])
