"""Typed records for every message type and event WeChat sends."""

from __future__ import annotations

import dataclasses
from collections import ChainMap, OrderedDict
from types import MappingProxyType
from typing import Callable, Iterator, Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.wechat import messages as m
from app.wechat.errors import XMLError
from app.wechat.xmlparse import parse_fields

TO = "gh_0123456789ab"
FROM = "oUser_abcdefghijklmnopqrstuv"
TIME = "1714000000"


def parse(msg_type: str, body: str, *, to: str = TO, sender: str = FROM, create_time: str = TIME) -> m.Message:
    xml = (
        f"<xml><ToUserName><![CDATA[{to}]]></ToUserName>"
        f"<FromUserName><![CDATA[{sender}]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime>"
        f"<MsgType><![CDATA[{msg_type}]]></MsgType>{body}</xml>"
    )
    return m.from_fields(parse_fields(xml.encode("utf-8")))


def event(name: str, body: str = "") -> m.Message:
    return parse("event", f"<Event><![CDATA[{name}]]></Event>{body}")


def assert_common(message: m.Message, msg_type: str) -> None:
    assert message.to_user == TO
    assert message.from_user == FROM
    assert message.create_time == int(TIME)
    assert message.msg_type == msg_type


def test_text():
    message = parse("text", "<Content><![CDATA[你好 world]]></Content><MsgId>1234567890123456</MsgId>")
    assert type(message) is m.TextMessage
    assert_common(message, "text")
    assert message.content == "你好 world"
    assert message.msg_id == 1234567890123456
    assert message.dedupe_key == "msg:1234567890123456"


def test_image():
    message = parse(
        "image",
        "<PicUrl><![CDATA[http://mmbiz.qpic.cn/x]]></PicUrl><MediaId><![CDATA[media_1]]></MediaId>"
        "<MsgId>1</MsgId>",
    )
    assert type(message) is m.ImageMessage
    assert_common(message, "image")
    assert (message.pic_url, message.media_id, message.msg_id) == ("http://mmbiz.qpic.cn/x", "media_1", 1)


def test_voice():
    message = parse(
        "voice",
        "<MediaId><![CDATA[media_v]]></MediaId><Format><![CDATA[amr]]></Format><MsgId>2</MsgId>",
    )
    assert type(message) is m.VoiceMessage
    assert (message.media_id, message.format, message.recognition, message.msg_id) == ("media_v", "amr", "", 2)


def test_voice_with_recognition():
    message = parse(
        "voice",
        "<MediaId><![CDATA[media_v]]></MediaId><Format><![CDATA[speex]]></Format>"
        "<Recognition><![CDATA[腾讯微信团队]]></Recognition><MsgId>3</MsgId>",
    )
    assert type(message) is m.VoiceMessage
    assert message.format == "speex"
    assert message.recognition == "腾讯微信团队"


def test_video():
    message = parse(
        "video",
        "<MediaId><![CDATA[media_video]]></MediaId><ThumbMediaId><![CDATA[thumb]]></ThumbMediaId><MsgId>4</MsgId>",
    )
    assert type(message) is m.VideoMessage
    assert (message.media_id, message.thumb_media_id, message.msg_id) == ("media_video", "thumb", 4)


def test_shortvideo():
    message = parse(
        "shortvideo",
        "<MediaId><![CDATA[media_sv]]></MediaId><ThumbMediaId><![CDATA[thumb_sv]]></ThumbMediaId><MsgId>5</MsgId>",
    )
    assert type(message) is m.ShortVideoMessage
    assert isinstance(message, m.VideoMessage)
    assert_common(message, "shortvideo")
    assert (message.media_id, message.thumb_media_id) == ("media_sv", "thumb_sv")


def test_location():
    message = parse(
        "location",
        "<Location_X>23.134521</Location_X><Location_Y>113.358803</Location_Y><Scale>20</Scale>"
        "<Label><![CDATA[位置信息]]></Label><MsgId>6</MsgId>",
    )
    assert type(message) is m.LocationMessage
    assert message.latitude == pytest.approx(23.134521)
    assert message.longitude == pytest.approx(113.358803)
    assert isinstance(message.latitude, float) and isinstance(message.scale, int)
    assert (message.scale, message.label, message.msg_id) == (20, "位置信息", 6)


def test_link():
    message = parse(
        "link",
        "<Title><![CDATA[公众平台官网链接]]></Title><Description><![CDATA[描述]]></Description>"
        "<Url><![CDATA[https://mp.weixin.qq.com]]></Url><MsgId>7</MsgId>",
    )
    assert type(message) is m.LinkMessage
    assert (message.title, message.description, message.url) == ("公众平台官网链接", "描述", "https://mp.weixin.qq.com")


@pytest.mark.parametrize("msg_type", ["TEXT", "Text", "tExT"])
def test_msg_type_is_case_insensitive(msg_type):
    message = parse(msg_type, "<Content>x</Content><MsgId>8</MsgId>")
    assert type(message) is m.TextMessage
    assert message.msg_type == msg_type


def test_unknown_message_keeps_raw_fields():
    message = parse("miniprogrampage", "<Title>t</Title><AppId>wxapp</AppId><PagePath>p/a</PagePath><MsgId>9</MsgId>")
    assert type(message) is m.UnknownMessage
    assert_common(message, "miniprogrampage")
    assert message.msg_id == 9
    assert message.raw["Title"] == "t"
    assert message.raw["AppId"] == "wxapp"
    assert message.raw["PagePath"] == "p/a"
    assert message.dedupe_key == "msg:9"


def test_subscribe():
    message = event("subscribe")
    assert type(message) is m.SubscribeEvent
    assert_common(message, "event")
    assert (message.event, message.event_key, message.ticket, message.scene) == ("subscribe", "", "", "")
    assert message.dedupe_key == f"evt:{FROM}:{TIME}:subscribe:"


def test_subscribe_from_qr_code():
    message = event(
        "subscribe",
        "<EventKey><![CDATA[qrscene_123123]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket>",
    )
    assert type(message) is m.SubscribeEvent
    assert (message.event_key, message.scene, message.ticket) == ("qrscene_123123", "123123", "TICKET")


def test_unsubscribe():
    message = event("unsubscribe", "<EventKey><![CDATA[]]></EventKey>")
    assert type(message) is m.UnsubscribeEvent
    assert message.event == "unsubscribe"
    assert message.event_key == ""


def test_scan():
    message = event("SCAN", "<EventKey><![CDATA[SCENE_VALUE]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket>")
    assert type(message) is m.ScanEvent
    assert (message.event, message.event_key, message.ticket) == ("SCAN", "SCENE_VALUE", "TICKET")


def test_location_event():
    message = event(
        "LOCATION", "<Latitude>23.137466</Latitude><Longitude>113.352425</Longitude><Precision>119.385040</Precision>"
    )
    assert type(message) is m.LocationEvent
    assert message.latitude == pytest.approx(23.137466)
    assert message.longitude == pytest.approx(113.352425)
    assert message.precision == pytest.approx(119.38504)


def test_click():
    message = event("CLICK", "<EventKey><![CDATA[V1001_TODAY_MUSIC]]></EventKey>")
    assert type(message) is m.ClickEvent
    assert message.event_key == "V1001_TODAY_MUSIC"


@pytest.mark.parametrize("name", ["VIEW", "view_miniprogram"])
def test_view(name):
    message = event(name, "<EventKey><![CDATA[https://www.qq.com/]]></EventKey><MenuId>208396938</MenuId>")
    assert type(message) is m.ViewEvent
    assert (message.event, message.event_key, message.menu_id) == (name, "https://www.qq.com/", "208396938")


def test_template_send_job_finish():
    message = event("TEMPLATESENDJOBFINISH", "<MsgID>200163836</MsgID><Status><![CDATA[success]]></Status>")
    assert type(message) is m.TemplateSendJobFinishEvent
    assert (message.msg_id, message.status) == (200163836, "success")
    assert message.dedupe_key == f"evt:{FROM}:{TIME}:TEMPLATESENDJOBFINISH:"


def test_mass_send_job_finish():
    message = event(
        "MASSSENDJOBFINISH",
        "<MsgID>1000001625</MsgID><Status><![CDATA[err(30003)]]></Status><TotalCount>100</TotalCount>"
        "<FilterCount>80</FilterCount><SentCount>75</SentCount><ErrorCount>5</ErrorCount>",
    )
    assert type(message) is m.MassSendJobFinishEvent
    assert (
        message.msg_id,
        message.status,
        message.total_count,
        message.filter_count,
        message.sent_count,
        message.error_count,
    ) == (1000001625, "err(30003)", 100, 80, 75, 5)


def test_scancode_push_keeps_nested_info():
    message = event(
        "scancode_push",
        "<EventKey><![CDATA[6]]></EventKey><ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType>"
        "<ScanResult><![CDATA[1]]></ScanResult></ScanCodeInfo>",
    )
    assert type(message) is m.MenuEvent
    assert message.event_key == "6"
    assert message.raw["ScanCodeInfo.ScanType"] == "qrcode"
    assert message.raw["ScanCodeInfo.ScanResult"] == "1"


def test_pic_sysphoto_keeps_every_picture():
    message = event(
        "pic_sysphoto",
        "<EventKey><![CDATA[6]]></EventKey><SendPicsInfo><Count>2</Count><PicList>"
        "<item><PicMd5Sum><![CDATA[1b5f7c23b5bf75682a53e7b6d163e185]]></PicMd5Sum></item>"
        "<item><PicMd5Sum><![CDATA[2c6f8d34c6cf86793b64f8c7e274f296]]></PicMd5Sum></item>"
        "</PicList></SendPicsInfo>",
    )
    assert type(message) is m.MenuEvent
    assert message.raw["SendPicsInfo.Count"] == "2"
    assert message.raw["SendPicsInfo.PicList.item.PicMd5Sum"] == "1b5f7c23b5bf75682a53e7b6d163e185"
    assert message.raw["SendPicsInfo.PicList.item#2.PicMd5Sum"] == "2c6f8d34c6cf86793b64f8c7e274f296"


@pytest.mark.parametrize("name", ["scancode_waitmsg", "pic_photo_or_album", "pic_weixin", "location_select"])
def test_other_menu_events(name):
    assert type(event(name, "<EventKey>k</EventKey>")) is m.MenuEvent


def test_unknown_event_keeps_raw_fields():
    message = event("debug_demo", "<debug_str><![CDATA[hello world]]></debug_str>")
    assert type(message) is m.UnknownEvent
    assert message.event == "debug_demo"
    assert message.raw["debug_str"] == "hello world"
    assert message.dedupe_key == f"evt:{FROM}:{TIME}:debug_demo:"


def test_event_without_event_tag_is_unknown_event():
    assert type(parse("event", "")) is m.UnknownEvent


def test_event_name_is_case_insensitive():
    assert type(event("Subscribe")) is m.SubscribeEvent
    assert type(event("scan")) is m.ScanEvent


def test_xml_vector_messages(xml_request_vector):
    fields = parse_fields(xml_request_vector["plaintext_msg"].encode("utf-8"))
    message = m.from_fields(fields)
    assert message.from_user == fields["FromUserName"]
    assert message.create_time == int(fields["CreateTime"])
    if fields["MsgType"] == "text":
        assert type(message) is m.TextMessage
        assert message.content == fields["Content"]
        assert message.dedupe_key == f"msg:{fields['MsgId']}"
    else:
        assert type(message) is m.UnknownEvent
        assert message.dedupe_key == f"evt:{fields['FromUserName']}:{fields['CreateTime']}:{fields.get('Event', '')}:{fields.get('EventKey', '')}"


def test_raw_keeps_every_field_and_is_read_only():
    message = parse("text", "<Content>x</Content><MsgId>10</MsgId><Extra>e</Extra>")
    assert dict(message.raw) == {
        "ToUserName": TO,
        "FromUserName": FROM,
        "CreateTime": TIME,
        "MsgType": "text",
        "Content": "x",
        "MsgId": "10",
        "Extra": "e",
    }
    with pytest.raises(TypeError):
        message.raw["Content"] = "y"  # type: ignore[index]


def test_messages_are_immutable():
    message = parse("text", "<Content>x</Content><MsgId>10</MsgId>")
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.content = "y"  # type: ignore[misc]


def test_raw_does_not_alias_the_input():
    fields = {"ToUserName": TO, "FromUserName": FROM, "CreateTime": TIME, "MsgType": "text", "Content": "x"}
    message = m.from_fields(fields)
    fields["Content"] = "changed"
    assert message.raw["Content"] == "x"


class PlainMapping(Mapping[str, str]):
    """A Mapping with no `copy`."""

    def __init__(self, data: dict[str, str]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> str:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


@pytest.mark.parametrize(
    "wrap",
    [
        dict,
        MappingProxyType,
        OrderedDict,
        PlainMapping,
        lambda d: MappingProxyType(OrderedDict(d)),
        lambda d: MappingProxyType(ChainMap(d)),
        lambda d: MappingProxyType(PlainMapping(d)),
    ],
    ids=["dict", "proxy", "ordereddict", "mapping", "proxy_of_ordereddict", "proxy_of_chainmap", "proxy_of_mapping"],
)
def test_raw_is_a_read_only_copy_of_any_mapping(wrap: Callable[[dict[str, str]], Mapping[str, str]]):
    fields = {"ToUserName": TO, "FromUserName": FROM, "CreateTime": TIME, "MsgType": "text", "Content": "x"}
    message = m.from_fields(wrap(fields))
    fields["Content"] = "changed"
    assert type(message.raw) is MappingProxyType
    assert dict(message.raw) == {**fields, "Content": "x"}
    assert message.content == "x"


@pytest.mark.parametrize("missing", ["ToUserName", "FromUserName", "CreateTime", "MsgType"])
@pytest.mark.parametrize("how", ["absent", "empty"])
def test_missing_required_field(missing, how):
    fields = {"ToUserName": TO, "FromUserName": FROM, "CreateTime": TIME, "MsgType": "text", "Content": "x"}
    if how == "absent":
        del fields[missing]
    else:
        fields[missing] = ""
    with pytest.raises(XMLError, match=f"missing required field.*{missing}"):
        m.from_fields(fields)


def test_all_missing_fields_are_named():
    with pytest.raises(XMLError, match="ToUserName, FromUserName, CreateTime, MsgType"):
        m.from_fields({})


@pytest.mark.parametrize(
    "msg_type, tag, value",
    [
        ("text", "CreateTime", "yesterday"),
        ("text", "CreateTime", "1.5"),
        ("text", "MsgId", "abc"),
        ("location", "Location_X", "north"),
        ("location", "Scale", "2.5"),
        ("event", "Latitude", "x"),
        ("text", "CreateTime", "9" * 5000),
    ],
)
def test_bad_typed_field_is_xml_error(msg_type, tag, value):
    fields = {"ToUserName": TO, "FromUserName": FROM, "CreateTime": TIME, "MsgType": msg_type, "Event": "LOCATION"}
    fields[tag] = value
    with pytest.raises(XMLError, match=f"field {tag} is not a valid"):
        m.from_fields(fields)


def test_blank_numeric_fields_default_to_zero():
    message = parse("location", "<Location_X></Location_X><Location_Y> </Location_Y><Scale/><MsgId></MsgId>")
    assert (message.latitude, message.longitude, message.scale, message.msg_id) == (0.0, 0.0, 0, 0)


def test_absent_optional_fields_get_defaults():
    message = parse("text", "")
    assert type(message) is m.TextMessage
    assert (message.content, message.msg_id) == ("", 0)


@pytest.mark.parametrize(
    "fields, key",
    [
        ({"MsgType": "text", "MsgId": "42", "FromUserName": "u", "CreateTime": "1"}, "msg:42"),
        ({"MsgType": "event", "MsgId": "42", "FromUserName": "u", "CreateTime": "1"}, "evt:u:1::"),
        ({"MsgType": "event", "MsgID": "42", "FromUserName": "u", "CreateTime": "1", "Event": "TEMPLATESENDJOBFINISH"}, "evt:u:1:TEMPLATESENDJOBFINISH:"),
        ({"MsgType": "text", "MsgId": "", "FromUserName": "u", "CreateTime": "1"}, "evt:u:1::"),
        ({"MsgType": "text", "FromUserName": "u", "CreateTime": "1"}, "evt:u:1::"),
        ({"MsgType": "event", "FromUserName": "u", "CreateTime": "1", "Event": "CLICK", "EventKey": "menu:a"}, "evt:u:1:CLICK:menu:a"),
        ({}, "evt::::"),
    ],
)
def test_dedupe_key(fields, key):
    assert m.dedupe_key(fields) == key


identifiers = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=30)


@settings(max_examples=100, deadline=None)
@given(sender=identifiers, create_time=st.integers(1, 2**40), msg_id=st.integers(1, 2**63 - 1))
def test_dedupe_key_identifies_retries(sender, create_time, msg_id):
    base = {"ToUserName": TO, "FromUserName": sender, "CreateTime": str(create_time)}
    text = m.from_fields({**base, "MsgType": "text", "Content": "a", "MsgId": str(msg_id)})
    assert text.dedupe_key == f"msg:{msg_id}"
    assert text.msg_id == msg_id
    click = m.from_fields({**base, "MsgType": "event", "Event": "CLICK", "EventKey": "k"})
    assert click.dedupe_key == f"evt:{sender}:{create_time}:CLICK:k"
    other = m.from_fields({**base, "MsgType": "event", "Event": "CLICK", "EventKey": "k2"})
    assert other.dedupe_key != click.dedupe_key, "another click in the same second is another event"


MSG_TYPES = ["text", "image", "voice", "video", "shortvideo", "location", "link", "event", "Event", "file"]
EVENTS = ["subscribe", "unsubscribe", "SCAN", "LOCATION", "CLICK", "VIEW", "TEMPLATESENDJOBFINISH",
          "MASSSENDJOBFINISH", "scancode_push", "pic_sysphoto", "debug_demo"]
TAGS = ["MsgId", "MsgID", "Content", "Location_X", "Location_Y", "Scale", "Latitude", "Longitude", "Precision",
        "TotalCount", "SentCount", "EventKey", "Ticket", "Recognition", "CreateTime"]
values = st.text(max_size=12) | st.integers(-(2**70), 2**70).map(str) | st.floats().map(str)


@settings(max_examples=100, deadline=None)
@given(
    base=st.fixed_dictionaries(
        {
            "ToUserName": st.text(max_size=8),
            "FromUserName": st.text(max_size=8),
            "CreateTime": values,
            "MsgType": st.sampled_from(MSG_TYPES) | st.text(max_size=8),
            "Event": st.sampled_from(EVENTS) | st.text(max_size=8),
        }
    ),
    extra=st.dictionaries(st.sampled_from(TAGS) | st.text(max_size=8), values, max_size=6),
)
def test_from_fields_yields_message_or_xml_error(base, extra):
    fields = {**base, **extra}
    try:
        message = m.from_fields(fields)
    except XMLError:
        return
    assert isinstance(message, m.Message)
    assert dict(message.raw) == fields
    assert message.dedupe_key == m.dedupe_key(fields)
