"""Passive replies: rendering, and parse(render(reply)) giving back every attribute."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.wechat.replies import (
    ACK_BODY,
    Ack,
    Article,
    ImageReply,
    MusicReply,
    NewsReply,
    TextReply,
    VideoReply,
    VoiceReply,
    cdata,
    render,
)
from app.wechat.xmlparse import parse_fields

xml_chars = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff")
xml_text = st.lists(
    st.text(xml_chars | st.sampled_from("\t\n]>&<😀"), max_size=10) | st.sampled_from(["]]>", "]]]]>", "<![CDATA["]),
    max_size=5,
).map("".join)
users = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=28)
times = st.integers(0, 2**40)


def round_trip(reply, to_user="oUser", from_user="gh_account", create_time=1714000000):
    fields = parse_fields(render(reply, to_user=to_user, from_user=from_user, create_time=create_time).encode("utf-8"))
    assert fields["ToUserName"] == to_user
    assert fields["FromUserName"] == from_user
    assert fields["CreateTime"] == str(create_time)
    assert fields["MsgType"] == reply.msg_type
    return {k: v for k, v in fields.items() if k not in ("ToUserName", "FromUserName", "CreateTime", "MsgType")}


@pytest.mark.parametrize("text", ["", "a", "]]>", "]]]]>", "x]]>y]]>z", "<![CDATA[", "]]><script>", "]", "]]"])
def test_cdata_survives_terminators(text):
    assert parse_fields(f"<xml><A>{cdata(text)}</A></xml>".encode())["A"] == text


def test_text_reply_xml():
    xml = render(TextReply("你好"), to_user="oUser", from_user="gh_x", create_time=12345678)
    assert xml == (
        "<xml><ToUserName><![CDATA[oUser]]></ToUserName><FromUserName><![CDATA[gh_x]]></FromUserName>"
        "<CreateTime>12345678</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        "<Content><![CDATA[你好]]></Content></xml>"
    )


def test_ack_is_success():
    assert render(Ack(), to_user="u", from_user="g", create_time=1) == ACK_BODY == "success"
    assert Ack().body() == ACK_BODY


@pytest.mark.parametrize("count", [0, 9])
def test_news_reply_holds_one_to_eight_articles(count):
    with pytest.raises(ValueError):
        NewsReply(tuple(Article(f"t{i}") for i in range(count)))


@settings(max_examples=100, deadline=None)
@given(content=xml_text, to_user=users, from_user=users, create_time=times)
def test_text_round_trip(content, to_user, from_user, create_time):
    assert round_trip(TextReply(content), to_user, from_user, create_time) == {"Content": content}


@settings(max_examples=50, deadline=None)
@given(media_id=xml_text)
def test_image_round_trip(media_id):
    assert round_trip(ImageReply(media_id)) == {"Image.MediaId": media_id}


@settings(max_examples=50, deadline=None)
@given(media_id=xml_text)
def test_voice_round_trip(media_id):
    assert round_trip(VoiceReply(media_id)) == {"Voice.MediaId": media_id}


@settings(max_examples=50, deadline=None)
@given(st.builds(VideoReply, media_id=xml_text, title=xml_text, description=xml_text))
def test_video_round_trip(reply):
    assert round_trip(reply) == {
        "Video.MediaId": reply.media_id,
        "Video.Title": reply.title,
        "Video.Description": reply.description,
    }


@settings(max_examples=50, deadline=None)
@given(
    st.builds(
        MusicReply,
        thumb_media_id=xml_text,
        title=xml_text,
        description=xml_text,
        music_url=xml_text,
        hq_music_url=xml_text,
    )
)
def test_music_round_trip(reply):
    assert round_trip(reply) == {
        "Music.Title": reply.title,
        "Music.Description": reply.description,
        "Music.MusicUrl": reply.music_url,
        "Music.HQMusicUrl": reply.hq_music_url,
        "Music.ThumbMediaId": reply.thumb_media_id,
    }


articles = st.builds(Article, title=xml_text, description=xml_text, pic_url=xml_text, url=xml_text)


@settings(max_examples=50, deadline=None)
@given(st.lists(articles, min_size=1, max_size=8).map(lambda items: NewsReply(tuple(items))))
def test_news_round_trip(reply):
    expected = {"ArticleCount": str(len(reply.articles))}
    for n, article in enumerate(reply.articles, start=1):
        item = "Articles.item" + (f"#{n}" if n > 1 else "")
        expected[f"{item}.Title"] = article.title
        expected[f"{item}.Description"] = article.description
        expected[f"{item}.PicUrl"] = article.pic_url
        expected[f"{item}.Url"] = article.url
    assert round_trip(reply) == expected


@pytest.mark.parametrize(
    "reply",
    [
        TextReply("a]]>b"),
        ImageReply("]]>"),
        VoiceReply("m]]>"),
        VideoReply("m", title="t]]>", description="]]>d"),
        MusicReply("th]]>", title="]]>", music_url="http://x/?a=1&b=2]]>"),
        NewsReply((Article("]]>", url="https://x/]]>"), Article("二", pic_url="]]]]>"))),
    ],
    ids=lambda reply: type(reply).__name__,
)
def test_cdata_terminator_in_every_reply_type(reply):
    expected = strings(reply) + ([str(len(reply.articles))] if isinstance(reply, NewsReply) else [])
    assert sorted(round_trip(reply).values()) == sorted(expected)


def strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, tuple):
        return [s for item in value for s in strings(item)]
    return [s for f in dataclasses.fields(value) for s in strings(getattr(value, f.name))]
