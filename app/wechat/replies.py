"""Passive replies: what the ingress returns in the HTTP response to a callback.

A reply is data (what to say); `render` adds the envelope (to/from/time) so the clock is
passed in, never read at import. `Ack` is the "received, the answer comes later" reply:
WeChat does not retry and shows the user nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

__all__ = (
    "Reply",
    "Ack",
    "ACK_BODY",
    "PASSIVE_TEXT_MAX_BYTES",
    "TextReply",
    "ImageReply",
    "VoiceReply",
    "VideoReply",
    "MusicReply",
    "Article",
    "NewsReply",
    "cdata",
    "render",
)


ACK_BODY = "success"
# WeChat rejects passive text replies longer than this (UTF-8 bytes).
PASSIVE_TEXT_MAX_BYTES = 2048


def cdata(text: str) -> str:
    """Wrap text in CDATA; a `]]>` inside is split across two sections."""
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


@dataclass(frozen=True, slots=True)
class Reply:
    msg_type: ClassVar[str] = ""

    def body(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Ack(Reply):
    """Acknowledge without a passive reply: WeChat stops retrying, the user sees nothing."""

    def body(self) -> str:
        return ACK_BODY


@dataclass(frozen=True, slots=True)
class TextReply(Reply):
    msg_type: ClassVar[str] = "text"
    content: str

    def body(self) -> str:
        return f"<Content>{cdata(self.content)}</Content>"


@dataclass(frozen=True, slots=True)
class ImageReply(Reply):
    msg_type: ClassVar[str] = "image"
    media_id: str

    def body(self) -> str:
        return f"<Image><MediaId>{cdata(self.media_id)}</MediaId></Image>"


@dataclass(frozen=True, slots=True)
class VoiceReply(Reply):
    msg_type: ClassVar[str] = "voice"
    media_id: str

    def body(self) -> str:
        return f"<Voice><MediaId>{cdata(self.media_id)}</MediaId></Voice>"


@dataclass(frozen=True, slots=True)
class VideoReply(Reply):
    msg_type: ClassVar[str] = "video"
    media_id: str
    title: str = ""
    description: str = ""

    def body(self) -> str:
        return (
            f"<Video><MediaId>{cdata(self.media_id)}</MediaId><Title>{cdata(self.title)}</Title>"
            f"<Description>{cdata(self.description)}</Description></Video>"
        )


@dataclass(frozen=True, slots=True)
class MusicReply(Reply):
    msg_type: ClassVar[str] = "music"
    thumb_media_id: str
    title: str = ""
    description: str = ""
    music_url: str = ""
    hq_music_url: str = ""

    def body(self) -> str:
        return (
            f"<Music><Title>{cdata(self.title)}</Title><Description>{cdata(self.description)}</Description>"
            f"<MusicUrl>{cdata(self.music_url)}</MusicUrl><HQMusicUrl>{cdata(self.hq_music_url)}</HQMusicUrl>"
            f"<ThumbMediaId>{cdata(self.thumb_media_id)}</ThumbMediaId></Music>"
        )


@dataclass(frozen=True, slots=True)
class Article:
    title: str
    description: str = ""
    pic_url: str = ""
    url: str = ""


@dataclass(frozen=True, slots=True)
class NewsReply(Reply):
    """Up to 8 articles (WeChat shows only the first for some clients)."""

    msg_type: ClassVar[str] = "news"
    articles: tuple[Article, ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.articles) <= 8:
            raise ValueError(f"a news reply holds 1 to 8 articles, got {len(self.articles)}")

    def body(self) -> str:
        items = "".join(
            f"<item><Title>{cdata(a.title)}</Title><Description>{cdata(a.description)}</Description>"
            f"<PicUrl>{cdata(a.pic_url)}</PicUrl><Url>{cdata(a.url)}</Url></item>"
            for a in self.articles
        )
        return f"<ArticleCount>{len(self.articles)}</ArticleCount><Articles>{items}</Articles>"


def render(reply: Reply, *, to_user: str, from_user: str, create_time: int) -> str:
    """The reply XML addressed to `to_user` (the user's openid); `success` for Ack."""
    if isinstance(reply, Ack):
        return ACK_BODY
    return (
        f"<xml><ToUserName>{cdata(to_user)}</ToUserName><FromUserName>{cdata(from_user)}</FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType>{cdata(reply.msg_type)}</MsgType>"
        f"{reply.body()}</xml>"
    )
