"""What the data tools know about wxstream's records: topic aliases, decoding each topic
with its record type from app/topics.py, filters, and the one-line and JSON renderings.

Pure: records come in as `TopicRecord`s built from whatever a consumer returned.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

import faust

from app.topics import (
    CLEAN_EVENTS,
    DEAD_LETTERS,
    DELIVERIES,
    RAW_EVENTS,
    REPLIES,
    TOPICS,
    CleanEvent,
    DeadLetter,
    Delivery,
    RawEvent,
    Reply,
    TopicSpec,
)

__all__ = (
    "ALIASES",
    "EVENT_TOPICS",
    "UnknownTopic",
    "resolve_topic",
    "alias_of",
    "TopicRecord",
    "decode",
    "RecordFilter",
    "format_line",
    "format_json",
)

ALIASES: dict[str, TopicSpec] = {
    "raw": RAW_EVENTS,
    "clean": CLEAN_EVENTS,
    "replies": REPLIES,
    "deliveries": DELIVERIES,
    "deadletter": DEAD_LETTERS,
}
EVENT_TOPICS = (RAW_EVENTS, CLEAN_EVENTS)  # the topics whose records have a message type

TEXT_WIDTH = 80  # of the free text at the end of a line


class UnknownTopic(ValueError):
    """A topic argument that is neither a wxstream topic's name nor its alias."""


def resolve_topic(name: str) -> TopicSpec:
    """The wxstream topic called `name` or its short alias (raw, clean, replies, ...)."""
    spec = ALIASES.get(name) or next((spec for spec in TOPICS if spec.name == name), None)
    if spec is None:
        known = ", ".join(f"{alias} ({spec.name})" for alias, spec in ALIASES.items())
        raise UnknownTopic(f"unknown topic {name!r}; wxstream topics: {known}")
    return spec


def alias_of(topic: str) -> str | None:
    return next((alias for alias, spec in ALIASES.items() if spec.name == topic), None)


@dataclass(frozen=True)
class TopicRecord:
    """One record of a wxstream topic: where it is, and its value decoded with the topic's
    record type (`record`), or why it could not be (`problem`). `data` is the value's JSON,
    unchanged, fields unknown to this version included."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: str | None
    value: bytes
    data: Any = None
    record: faust.Record | None = None
    problem: str | None = None

    @property
    def account(self) -> str | None:
        """From the key (`account:openid`), which every wxstream topic has."""
        return self.key.split(":", 1)[0] if self.key and ":" in self.key else None

    @property
    def openid(self) -> str | None:
        return self.key.split(":", 1)[1] if self.key and ":" in self.key else None

    @property
    def kind(self) -> str:
        """The message type, or `event/<Event>` for events; the record type otherwise."""
        record = self.record
        if isinstance(record, (RawEvent, CleanEvent)):
            event = record.event if isinstance(record, CleanEvent) else record.fields.get("Event", "")
            return f"event/{event}" if event else record.msg_type
        if record is None:
            return "undecodable"
        return type(record).__name__.lower()


def decode(
    spec: TopicSpec, partition: int, offset: int, timestamp_ms: int, key: bytes | None, value: bytes | None
) -> TopicRecord:
    """A record of topic `spec`, decoded with its record type; never raises."""
    value = value or b""
    where = dict(
        topic=spec.name,
        partition=partition,
        offset=offset,
        timestamp_ms=timestamp_ms,
        key=None if key is None else key.decode("utf-8", "backslashreplace"),
        value=value,
    )
    try:
        data = json.loads(value)
    except ValueError as exc:
        return TopicRecord(**where, problem=f"not JSON: {exc}")
    if not isinstance(data, dict):
        return TopicRecord(**where, data=data, problem=f"expected a JSON object, got {type(data).__name__}")
    try:
        record = spec.record.from_data(dict(data))
    except (TypeError, ValueError) as exc:
        return TopicRecord(**where, data=data, problem=f"not a {spec.record.__name__}: {exc}")
    if not isinstance(getattr(record, "fields", {}), dict):  # Faust does not check field types
        return TopicRecord(**where, data=data, problem=f"not a {spec.record.__name__}: fields is not an object")
    if isinstance(record, RawEvent) and (problem := record.problem()) is not None:  # as the dedupe agent checks it
        return TopicRecord(**where, data=data, problem=f"not a valid RawEvent: {problem}")
    return TopicRecord(**where, data=data, record=record)


@dataclass(frozen=True)
class RecordFilter:
    """`--account`, `--openid` and `--type`; a record matches when it matches all given.
    `--type` is a message type (text, voice, ...) or an event (subscribe, CLICK, ...)."""

    account: str | None = None
    openid: str | None = None
    type: str | None = None

    def matches(self, record: TopicRecord) -> bool:
        if self.account is not None and record.account != self.account:
            return False
        if self.openid is not None and record.openid != self.openid:
            return False
        if self.type is not None:
            kind = record.kind.lower()
            wanted = self.type.lower()
            return kind == wanted or kind == f"event/{wanted}" or (wanted == "event" and kind.startswith("event/"))
        return True


def _event_text(record: RawEvent | CleanEvent) -> str:
    fields = record.fields
    said = fields.get("Content") or fields.get("Recognition") or fields.get("EventKey") or fields.get("Url", "")
    return f"{record.dedupe_key} {said!r}" if said else record.dedupe_key


_SUMMARIES: dict[type[faust.Record], Callable[[Any], str]] = {
    RawEvent: _event_text,
    CleanEvent: _event_text,
    Reply: lambda r: f"{r.reply_id} re {r.in_reply_to} by {r.model} {r.text!r}",
    Delivery: lambda r: f"{r.reply_id} via {r.path}",
    DeadLetter: lambda r: f"{r.source_topic}[{r.partition}]@{r.offset} {r.reason}",
}


def _shorten(text: str, width: int = TEXT_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_line(record: TopicRecord) -> str:
    """`time  partition@offset  key  kind  main fields`, for people reading a terminal."""
    when = datetime.fromtimestamp(record.timestamp_ms / 1000).isoformat(sep=" ", timespec="milliseconds")
    if record.record is not None:
        text = _SUMMARIES[type(record.record)](record.record)
    else:
        text = f"{record.problem}: {record.value.decode('utf-8', 'backslashreplace')}"
    return f"{when}  {record.partition}@{record.offset}  {record.key or '-'}  {record.kind}  {_shorten(text)}"


def format_json(record: TopicRecord) -> str:
    """One JSON object per record: where it is, and its value as written (`value`), or
    the value as text when it is not JSON."""
    value = record.data if record.data is not None else record.value.decode("utf-8", "backslashreplace")
    return json.dumps(
        {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "timestamp": record.timestamp_ms / 1000,
            "key": record.key,
            "value": value,
        },
        ensure_ascii=False,
    )
