"""Every topic wxstream reads or writes: its name, record type and purpose, in one place.

All topics are keyed by `user_key(account, openid)`, so one user's events stay in order
on one partition together with the table rows (dedupe, sessions, limits) they touch.
Names carry a version: a breaking change to a record gets a new topic, never a silent
change to an existing one.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import faust

if TYPE_CHECKING:
    from app.settings import Settings

__all__ = (
    "RawEvent",
    "CleanEvent",
    "Reply",
    "Delivery",
    "DeadLetter",
    "TopicSpec",
    "TOPICS",
    "RAW_EVENTS",
    "CLEAN_EVENTS",
    "REPLIES",
    "DELIVERIES",
    "DEAD_LETTERS",
    "Topics",
    "user_key",
    "reply_id",
    "ACCOUNT_NAME",
)

CLEAN_SCHEMA = "wxstream.event/1"
# An account's name: the {account} of its callback URL and the first part of every key.
ACCOUNT_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_REQUIRED_FIELDS = ("FromUserName", "CreateTime", "MsgType")


class RawEvent(faust.Record, serializer="json", include_metadata=False):
    """A callback as the ingress accepted it: verified, decrypted, parsed, not deduplicated."""

    account: str
    openid: str
    msg_type: str
    dedupe_key: str
    fields: dict[str, str]
    received_at: float
    encrypted: bool = False

    def problem(self) -> str | None:
        """Why this cannot become a clean event (the schema's rules), or None. Faust checks
        no field types, and only the ingress is meant to write the raw topic."""
        if not all(isinstance(v, str) for v in (self.account, self.openid, self.msg_type, self.dedupe_key)):
            return "account, openid, msg_type and dedupe_key must be strings"
        if not isinstance(self.received_at, (int, float)) or isinstance(self.received_at, bool):
            return "received_at must be a number"
        if not isinstance(self.fields, dict) or not all(isinstance(v, str) for v in self.fields.values()):
            return "fields must map names to strings"
        missing = [name for name in _REQUIRED_FIELDS if not self.fields.get(name)]
        if missing or not self.account or not self.openid or not self.dedupe_key:
            return f"missing {', '.join(missing) or 'account/openid/dedupe_key'}"
        if not ACCOUNT_NAME.fullmatch(self.account):
            return f"account {self.account[:70]!r} is not an account name"
        create_time = self.fields["CreateTime"]
        if not (create_time.isascii() and create_time.isdigit()):  # int() must accept it
            return "CreateTime is not a unix time"
        return None


class CleanEvent(faust.Record, serializer="json", include_metadata=False):
    """A deduplicated event for data teams and the reply pipeline (schema `wxstream.event/1`)."""

    schema: str
    account: str
    openid: str
    msg_type: str
    event: str
    dedupe_key: str
    fields: dict[str, str]
    event_time: int
    ingest_time: float


class Reply(faust.Record, serializer="json", include_metadata=False):
    """An answer to one user message. `reply_id` is derived from the message it answers,
    so reprocessing after a crash yields the same id and delivery can drop the repeat."""

    reply_id: str
    account: str
    openid: str
    in_reply_to: str
    text: str
    model: str
    created_at: float
    # When the ingress accepted the message answered (unix s): reply latency is measured
    # from it. 0 in records written before the field existed.
    received_at: float = 0.0


class Delivery(faust.Record, serializer="json", include_metadata=False):
    """The delivery log of a reply, in the user's partition, in the order things happened.

    `path`:
    - `passive`: the ingress returns the reply in the HTTP response (written, and
      acknowledged by the broker, before it answers); nothing else may deliver it.
    - `deferred`: the ingress answered WeChat without the reply (not ready in time, too
      long for a passive reply, or the message was spooled); the sender delivers it. The
      sender writes it too when no verdict came from the ingress in time.
    - `api`: the sender delivered every part through the customer-service API.
    - `mailbox`: WeChat refused the API (48 h window, too many messages, no API for the
      account); the reply waits in the user's mailbox for their next message.
    - `dead_letter`: delivery was given up; `reason` says why, and the reply is on the
      dead-letter topic.
    """

    reply_id: str
    account: str
    openid: str
    path: str
    delivered_at: float
    reason: str = ""


class DeadLetter(faust.Record, serializer="json", include_metadata=False):
    """An input that could not be processed, with why, so that it never blocks a partition
    and can be inspected and replayed. `payload` is the record's value as text (UTF-8,
    undecodable bytes escaped)."""

    source_topic: str
    partition: int
    offset: int
    reason: str
    payload: str
    at: float


@dataclass(frozen=True)
class TopicSpec:
    name: str
    record: type[faust.Record]
    purpose: str


RAW_EVENTS = TopicSpec("wxstream.events.raw.v1", RawEvent, "every accepted callback, written by the ingress")
CLEAN_EVENTS = TopicSpec(
    "wxstream.events.clean.v1", CleanEvent, "deduplicated events of all types; the data teams' contract"
)
REPLIES = TopicSpec("wxstream.replies.v1", Reply, "answers to deliver to users, written by the agents")
DELIVERIES = TopicSpec(
    "wxstream.deliveries.v1", Delivery, "which path (passive reply or API) delivered each reply, so none is sent twice"
)
DEAD_LETTERS = TopicSpec(
    "wxstream.deadletter.v1", DeadLetter, "inputs that could not be processed (undecodable, schema-invalid), with the reason"
)
TOPICS: tuple[TopicSpec, ...] = (RAW_EVENTS, CLEAN_EVENTS, REPLIES, DELIVERIES, DEAD_LETTERS)


def user_key(account: str, openid: str) -> str:
    """The partitioning key of every topic: one user of one account."""
    return f"{account}:{openid}"


def reply_id(account: str, dedupe_key: str) -> str:
    """Stable id of the reply to one message: the same message always gets the same id,
    so the ingress, the agents and the sender agree on it without asking each other."""
    return hashlib.sha1(f"{account}:{dedupe_key}".encode("utf-8")).hexdigest()[:24]


@dataclass(frozen=True)
class Topics:
    """The Faust topic objects of one app."""

    raw: faust.TopicT  # read as bytes: a record that does not decode goes to the dead letters
    clean: faust.TopicT
    replies: faust.TopicT
    deliveries: faust.TopicT
    dead_letters: faust.TopicT

    @classmethod
    def declare(cls, app: faust.App, settings: "Settings") -> "Topics":
        def topic(spec: TopicSpec) -> faust.TopicT:
            return app.topic(
                spec.name,
                key_type=str,
                value_type=spec.record,
                key_serializer="raw",
                partitions=settings.partitions,
            )

        return cls(
            raw=app.topic(
                RAW_EVENTS.name, key_type=str, key_serializer="raw", value_serializer="raw", partitions=settings.partitions
            ),
            clean=topic(CLEAN_EVENTS),
            replies=topic(REPLIES),
            deliveries=topic(DELIVERIES),
            dead_letters=topic(DEAD_LETTERS),
        )
