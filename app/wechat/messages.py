"""Typed, immutable records for every callback WeChat sends.

Each class declares which XML tag feeds each attribute; `from_fields` builds the right
class from parsed fields. Unknown message types and events become `UnknownMessage` /
`UnknownEvent` that keep every raw field: a new WeChat feature never breaks ingestion.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping, TypeVar

from app.wechat.errors import XMLError

__all__ = (
    "Message",
    "from_fields",
    "dedupe_key",
    "TextMessage",
    "ImageMessage",
    "VoiceMessage",
    "VideoMessage",
    "ShortVideoMessage",
    "LocationMessage",
    "LinkMessage",
    "UnknownMessage",
    "Event",
    "SubscribeEvent",
    "UnsubscribeEvent",
    "ScanEvent",
    "LocationEvent",
    "ClickEvent",
    "ViewEvent",
    "TemplateSendJobFinishEvent",
    "MassSendJobFinishEvent",
    "MenuEvent",
    "UnknownEvent",
)

_EMPTY: Mapping[str, str] = MappingProxyType({})


def xml_field(tag: str, convert: Callable[[str], Any] = str, default: Any = "") -> Any:
    """Declare an attribute filled from XML tag `tag`, converted by `convert`."""
    return field(default=default, metadata={"tag": tag, "convert": convert})


def _number(text: str) -> float:
    return float(text) if text.strip() else 0.0


def _integer(text: str) -> int:
    return int(text) if text.strip() else 0


@dataclass(frozen=True, slots=True)
class Message:
    """Fields common to every callback; `raw` keeps all XML fields verbatim."""

    to_user: str = xml_field("ToUserName")
    from_user: str = xml_field("FromUserName")
    create_time: int = xml_field("CreateTime", _integer, 0)
    msg_type: str = xml_field("MsgType")
    raw: Mapping[str, str] = field(default_factory=lambda: _EMPTY, repr=False, compare=False)

    @property
    def dedupe_key(self) -> str:
        return dedupe_key(self.raw)


@dataclass(frozen=True, slots=True)
class _WithMsgId(Message):
    msg_id: int = xml_field("MsgId", _integer, 0)


_MESSAGES: dict[str, type[Message]] = {}
_EVENTS: dict[str, type[Message]] = {}
M = TypeVar("M", bound=type[Message])


def _register(registry: dict[str, type[Message]], *names: str) -> Callable[[M], M]:
    def decorate(cls: M) -> M:
        for name in names:
            registry[name.lower()] = cls
        return cls

    return decorate


@_register(_MESSAGES, "text")
@dataclass(frozen=True, slots=True)
class TextMessage(_WithMsgId):
    content: str = xml_field("Content")


@_register(_MESSAGES, "image")
@dataclass(frozen=True, slots=True)
class ImageMessage(_WithMsgId):
    pic_url: str = xml_field("PicUrl")
    media_id: str = xml_field("MediaId")


@_register(_MESSAGES, "voice")
@dataclass(frozen=True, slots=True)
class VoiceMessage(_WithMsgId):
    media_id: str = xml_field("MediaId")
    format: str = xml_field("Format")
    recognition: str = xml_field("Recognition")


@_register(_MESSAGES, "video")
@dataclass(frozen=True, slots=True)
class VideoMessage(_WithMsgId):
    media_id: str = xml_field("MediaId")
    thumb_media_id: str = xml_field("ThumbMediaId")


@_register(_MESSAGES, "shortvideo")
@dataclass(frozen=True, slots=True)
class ShortVideoMessage(VideoMessage):
    pass


@_register(_MESSAGES, "location")
@dataclass(frozen=True, slots=True)
class LocationMessage(_WithMsgId):
    latitude: float = xml_field("Location_X", _number, 0.0)
    longitude: float = xml_field("Location_Y", _number, 0.0)
    scale: int = xml_field("Scale", _integer, 0)
    label: str = xml_field("Label")


@_register(_MESSAGES, "link")
@dataclass(frozen=True, slots=True)
class LinkMessage(_WithMsgId):
    title: str = xml_field("Title")
    description: str = xml_field("Description")
    url: str = xml_field("Url")


@dataclass(frozen=True, slots=True)
class UnknownMessage(_WithMsgId):
    """A message type this version does not know; all fields are in `raw`."""


@dataclass(frozen=True, slots=True)
class Event(Message):
    event: str = xml_field("Event")


@dataclass(frozen=True, slots=True)
class _KeyedEvent(Event):
    event_key: str = xml_field("EventKey")


@_register(_EVENTS, "subscribe")
@dataclass(frozen=True, slots=True)
class SubscribeEvent(_KeyedEvent):
    """Follow; from a parametric QR code `event_key` is `qrscene_<scene>` and `ticket` is set."""

    ticket: str = xml_field("Ticket")

    @property
    def scene(self) -> str:
        return self.event_key.removeprefix("qrscene_")


@_register(_EVENTS, "unsubscribe")
@dataclass(frozen=True, slots=True)
class UnsubscribeEvent(_KeyedEvent):
    pass


@_register(_EVENTS, "scan")
@dataclass(frozen=True, slots=True)
class ScanEvent(_KeyedEvent):
    """An existing follower scanned a parametric QR code; `event_key` is the scene."""

    ticket: str = xml_field("Ticket")


@_register(_EVENTS, "location")
@dataclass(frozen=True, slots=True)
class LocationEvent(Event):
    latitude: float = xml_field("Latitude", _number, 0.0)
    longitude: float = xml_field("Longitude", _number, 0.0)
    precision: float = xml_field("Precision", _number, 0.0)


@_register(_EVENTS, "click")
@dataclass(frozen=True, slots=True)
class ClickEvent(_KeyedEvent):
    pass


@_register(_EVENTS, "view", "view_miniprogram")
@dataclass(frozen=True, slots=True)
class ViewEvent(_KeyedEvent):
    menu_id: str = xml_field("MenuId")


@_register(_EVENTS, "templatesendjobfinish")
@dataclass(frozen=True, slots=True)
class TemplateSendJobFinishEvent(Event):
    msg_id: int = xml_field("MsgID", _integer, 0)
    status: str = xml_field("Status")


@_register(_EVENTS, "masssendjobfinish")
@dataclass(frozen=True, slots=True)
class MassSendJobFinishEvent(Event):
    msg_id: int = xml_field("MsgID", _integer, 0)
    status: str = xml_field("Status")
    total_count: int = xml_field("TotalCount", _integer, 0)
    filter_count: int = xml_field("FilterCount", _integer, 0)
    sent_count: int = xml_field("SentCount", _integer, 0)
    error_count: int = xml_field("ErrorCount", _integer, 0)


@_register(
    _EVENTS,
    "scancode_push",
    "scancode_waitmsg",
    "pic_sysphoto",
    "pic_photo_or_album",
    "pic_weixin",
    "location_select",
)
@dataclass(frozen=True, slots=True)
class MenuEvent(_KeyedEvent):
    """Custom-menu events that carry nested info; its fields stay in `raw` as dotted paths."""


@dataclass(frozen=True, slots=True)
class UnknownEvent(Event):
    """An event this version does not know; all fields are in `raw`."""


_REQUIRED = ("ToUserName", "FromUserName", "CreateTime", "MsgType")


def dedupe_key(fields: Mapping[str, str]) -> str:
    """WeChat's retry identity: `MsgId` for messages, FromUserName + CreateTime for events."""
    msg_id = fields.get("MsgId")
    if msg_id and fields.get("MsgType") != "event":
        return f"msg:{msg_id}"
    return f"evt:{fields.get('FromUserName', '')}:{fields.get('CreateTime', '')}"


def from_fields(fields: Mapping[str, str]) -> Message:
    """Build the typed record for parsed fields; XMLError if a common field is missing."""
    missing = [tag for tag in _REQUIRED if not fields.get(tag)]
    if missing:
        raise XMLError(f"missing required field(s): {', '.join(missing)}")
    msg_type = fields["MsgType"].lower()
    if msg_type == "event":
        cls = _EVENTS.get(fields.get("Event", "").lower(), UnknownEvent)
    else:
        cls = _MESSAGES.get(msg_type, UnknownMessage)
    return _build(cls, fields)


@functools.cache
def _xml_fields(cls: type[Message]) -> tuple[tuple[str, str, Callable[[str], Any], Any], ...]:
    """(attribute, tag, convert, type) of each XML-fed attribute of `cls`, computed once."""
    return tuple(
        (f.name, f.metadata["tag"], f.metadata["convert"], f.type)
        for f in dataclasses.fields(cls)
        if f.metadata.get("tag") is not None
    )


def _build(cls: type[Message], fields: Mapping[str, str]) -> Message:
    raw = dict(fields)
    values: dict[str, Any] = {"raw": MappingProxyType(raw)}
    for name, tag, convert, type_ in _xml_fields(cls):
        if tag not in raw:
            continue
        try:
            values[name] = convert(raw[tag])
        except ValueError:
            raise XMLError(f"field {tag} is not a valid {type_}: {raw[tag]!r:.40}") from None
    return cls(**values)
