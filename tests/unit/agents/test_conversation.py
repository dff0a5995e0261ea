"""Conversation helpers: the stable reply id and what the user said."""

from __future__ import annotations

import hashlib
import re

import pytest

from agents.conversation import user_text
from app.topics import CLEAN_SCHEMA, CleanEvent, reply_id


def clean(msg_type: str, **fields: str) -> CleanEvent:
    return CleanEvent(
        schema=CLEAN_SCHEMA,
        account="demo",
        openid="oUser",
        msg_type=msg_type,
        event=fields.get("Event", ""),
        dedupe_key="msg:1",
        fields={"FromUserName": "oUser", "CreateTime": "1714000000", "MsgType": msg_type, **fields},
        event_time=1714000000,
        ingest_time=1714000000.5,
    )


# --- reply_id ------------------------------------------------------------------------


def test_reply_id_is_stable():
    assert reply_id("demo", "msg:1234567890123456") == reply_id("demo", "msg:1234567890123456")


def test_reply_id_is_24_hex_characters():
    assert re.fullmatch(r"[0-9a-f]{24}", reply_id("demo", "msg:1"))
    assert re.fullmatch(r"[0-9a-f]{24}", reply_id("账号", "evt:o用户:1714000000"))


def test_reply_id_has_a_known_value():
    # Ids persist in the deliveries topic: changing the derivation would resend replies.
    assert reply_id("demo", "msg:1") == hashlib.sha1(b"demo:msg:1").hexdigest()[:24]


def test_reply_id_differs_across_accounts():
    assert reply_id("demo", "msg:1") != reply_id("shop", "msg:1")


def test_reply_id_differs_across_dedupe_keys():
    keys = ["msg:1", "msg:2", "msg:10", "evt:oUser:1714000000", "evt:oUser:1714000001", "evt:oOther:1714000000"]
    assert len({reply_id("demo", key) for key in keys}) == len(keys)


# --- user_text -----------------------------------------------------------------------


def test_text_message():
    assert user_text(clean("text", Content="你好 world")) == "你好 world"


def test_text_message_without_content_is_empty_text():
    assert user_text(clean("text")) == ""


def test_voice_message_with_recognition():
    assert user_text(clean("voice", MediaId="m1", Format="amr", Recognition="今天天气怎么样")) == "今天天气怎么样"


@pytest.mark.parametrize("fields", [{}, {"Recognition": ""}], ids=["no-recognition", "empty-recognition"])
def test_voice_message_without_recognition(fields):
    assert user_text(clean("voice", MediaId="m1", Format="amr", **fields)) is None


def test_image_message_has_no_text():
    assert user_text(clean("image", PicUrl="http://example.invalid/a.jpg", MediaId="m1")) is None


@pytest.mark.parametrize("event", ["subscribe", "CLICK", "unsubscribe"])
def test_events_have_no_text(event):
    assert user_text(clean("event", Event=event, EventKey="MENU", Content="ignored")) is None
