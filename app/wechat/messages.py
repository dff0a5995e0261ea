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


def xml_field(tag: str, convert: Callable[[str], Any] = str) -> Any:
    """Declare an attribute filled from XML tag `tag`, converted by `convert`; when the tag
    is absent it is `convert("")`, as if the tag were empty."""
    return field(default=convert(""), metadata={"tag": tag, "convert": convert})


def _number(text: str) -> float:
    return float(text) if text.strip() else 0.0


def _integer(text: str) -> int:
    return int(text) if text.strip() else 0


@dataclass(frozen=True, slots=True)
class Message:
    """Fields common to every callback; `raw` keeps all XML fields verbatim."""

    to_user: str = xml_field("ToUserName")
    from_user: str = xml_field("FromUserName")
    create_time: int = xml_field("CreateTime", _integer)
    msg_type: str = xml_field("MsgType")
    raw: Mapping[str, str] = field(default_factory=lambda: _EMPTY, repr=False, compare=False)

    @property
    def dedupe_key(self) -> str:
        return dedupe_key(self.raw)


@dataclass(frozen=True, slots=True)
class _WithMsgId(Message):
    msg_id: int = xml_field("MsgId", _integer)


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
    latitude: float = xml_field("Location_X", _number)
    longitude: float = xml_field("Location_Y", _number)
    scale: int = xml_field("Scale", _integer)
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
    latitude: float = xml_field("Latitude", _number)
    longitude: float = xml_field("Longitude", _number)
    precision: float = xml_field("Precision", _number)


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
    msg_id: int = xml_field("MsgID", _integer)
    status: str = xml_field("Status")


@_register(_EVENTS, "masssendjobfinish")
@dataclass(frozen=True, slots=True)
class MassSendJobFinishEvent(Event):
    msg_id: int = xml_field("MsgID", _integer)
    status: str = xml_field("Status")
    total_count: int = xml_field("TotalCount", _integer)
    filter_count: int = xml_field("FilterCount", _integer)
    sent_count: int = xml_field("SentCount", _integer)
    error_count: int = xml_field("ErrorCount", _integer)


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
    """WeChat's retry identity: `MsgId` for messages; for events, which have none,
    FromUserName + CreateTime (WeChat's advice) + Event + EventKey, so that two events of
    one user in the same second (a subscribe and a LOCATION, two menu clicks) stay two.
    A retry repeats every field, so it still has the same key."""
    msg_id = fields.get("MsgId")
    if msg_id and fields.get("MsgType") != "event":
        return f"msg:{msg_id}"
    return ":".join(
        ("evt", fields.get("FromUserName", ""), fields.get("CreateTime", ""), fields.get("Event", ""), fields.get("EventKey", ""))
    )


def from_fields(fields: Mapping[str, str]) -> Message:
    """Build the typed record for parsed fields; XMLError if a common field is missing."""
    own = _copy(fields)
    if not all(map(own.get, _REQUIRED)):
        missing = [tag for tag in _REQUIRED if not own.get(tag)]
        raise XMLError(f"missing required field(s): {', '.join(missing)}")
    msg_type = own["MsgType"].lower()
    if msg_type == "event":
        cls = _EVENTS.get(own.get("Event", "").lower(), UnknownEvent)
    else:
        cls = _MESSAGES.get(msg_type, UnknownMessage)
    return _build(cls, own)


def _copy(fields: Mapping[str, str]) -> dict[str, str]:
    """A dict copy of `fields`. `dict()` reads a read-only proxy key by key, so the proxies
    that `parse_fields` returns are copied through the dict behind them."""
    try:
        copy = fields.copy()  # type: ignore[attr-defined]
    except AttributeError:
        copy = None
    return copy if type(copy) is dict else dict(fields)


_Layout = tuple[tuple[str | None, Callable[[str], Any] | None], ...]


@functools.cache
def _layout(cls: type[Message]) -> _Layout:
    """(tag, convert) of each `__init__` argument of `cls`, in order, computed once: tag
    None for `raw`, convert None for text taken as it is."""
    return tuple(_argument(f) for f in dataclasses.fields(cls))


def _argument(f: dataclasses.Field) -> tuple[str | None, Callable[[str], Any] | None]:
    tag = f.metadata.get("tag")
    if tag is None or f.metadata["convert"] is str:
        return tag, None
    return tag, _checked(tag, f.metadata["convert"], f.type)


def _checked(tag: str, convert: Callable[[str], Any], type_name: str) -> Callable[[str], Any]:
    """`convert` raising XMLError, naming the field, where it raises ValueError."""

    def convert_field(text: str) -> Any:
        try:
            return convert(text)
        except ValueError:
            raise XMLError(f"field {tag} is not a valid {type_name}: {text!r:.40}") from None

    return convert_field


def _build(cls: type[Message], fields: dict[str, str]) -> Message:
    """`cls` from `fields`, which it keeps read-only as `raw`."""
    raw, get = MappingProxyType(fields), fields.get
    return cls(
        *[raw if tag is None else get(tag, "") if convert is None else convert(get(tag, "")) for tag, convert in _layout(cls)]
    )
