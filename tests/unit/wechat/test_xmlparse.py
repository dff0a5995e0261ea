"""Hardened XML parsing: flat fields out, hostile documents refused with XMLError."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.wechat.errors import TooLargeError, WeChatError, XMLError
from app.wechat.xmlparse import DEFAULT_MAX_BYTES, DEFAULT_MAX_DEPTH, parse_fields, render_fields

TEXT_XML = (
    b"<xml><ToUserName><![CDATA[gh_123]]></ToUserName>\n"
    b"<FromUserName><![CDATA[oUser]]></FromUserName>\n"
    b"<CreateTime>1714000000</CreateTime>\n"
    b"<MsgType><![CDATA[text]]></MsgType>\n"
    b"<Content><![CDATA[hello]]></Content>\n"
    b"<MsgId>1234567890123456</MsgId>\n"
    b"</xml>"
)

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh</ToUserName><Content>&xxe;</Content></xml>"""

XXE_PARAMETER = b"""<!DOCTYPE xml [<!ENTITY % remote SYSTEM "http://127.0.0.1:1/x.dtd"> %remote;]>
<xml><Content>x</Content></xml>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<xml><Content>&lol9;</Content></xml>"""

QUADRATIC_BLOWUP = (
    b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "' + b"A" * 50_000 + b'">]><xml><Content>'
    + b"&a;" * 10_000
    + b"</Content></xml>"
)

HOSTILE_DOCUMENTS = {
    "xxe_file": XXE,
    "xxe_parameter_entity": XXE_PARAMETER,
    "billion_laughs": BILLION_LAUGHS,
    "quadratic_blowup": QUADRATIC_BLOWUP,
    "doctype_plain": b"<!DOCTYPE xml><xml><A>1</A></xml>",
    "doctype_system": b'<!DOCTYPE xml SYSTEM "file:///etc/passwd"><xml><A>1</A></xml>',
    "doctype_public": b'<!DOCTYPE xml PUBLIC "-//W3C//DTD XHTML 1.0//EN" "http://www.w3.org/x.dtd"><xml/>',
    "doctype_empty_internal_subset": b"<!DOCTYPE xml []><xml><A>1</A></xml>",
    "doctype_lowercase": b"<!doctype xml><xml><A>1</A></xml>",
    "doctype_after_declaration": b'<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE xml><xml/>',
    "doctype_after_comment": b"<!-- hi --><!DOCTYPE xml><xml/>",
    "doctype_with_bom": b"\xef\xbb\xbf<!DOCTYPE xml><xml/>",
    "entity_outside_doctype": b'<xml><!ENTITY a "b"><A>1</A></xml>',
    "doctype_utf16": (
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE xml [<!ENTITY a "x">]><xml><A>&a;</A></xml>'.encode("utf-16")
    ),
    "xxe_utf16": '<!DOCTYPE xml [<!ENTITY a SYSTEM "file:///etc/passwd">]><xml><A>&a;</A></xml>'.encode("utf-16"),
    "doctype_utf16_be_no_bom": '<?xml version="1.0" encoding="UTF-16BE"?><!DOCTYPE xml><xml/>'.encode("utf-16-be"),
    "doctype_utf32": '<!DOCTYPE xml [<!ENTITY a "x">]><xml><A>&a;</A></xml>'.encode("utf-32"),
}

MALFORMED = {
    "empty": b"",
    "whitespace": b"  \n ",
    "text": b"hello",
    "json": b'{"ToUserName": "gh"}',
    "unclosed": b"<xml><A>1</A>",
    "mismatched": b"<xml><A>1</B></xml>",
    "two_roots": b"<xml/><xml/>",
    "declaration_only": b'<?xml version="1.0"?>',
    "undefined_entity": b"<xml><A>&nope;</A></xml>",
    "bad_char_ref": b"<xml><A>&#0;</A></xml>",
    "nul_byte": b"<xml><A>\x00</A></xml>",
    "control_char": b"<xml><A>\x01</A></xml>",
    "invalid_utf8": b"<xml><A>\xff\xfe</A></xml>",
    "latin1_bytes": '<?xml version="1.0" encoding="ISO-8859-1"?><xml><A>café</A></xml>'.encode("latin-1"),
    "unterminated_cdata": b"<xml><A><![CDATA[x</A></xml>",
    "lt_in_text": b"<xml><A>a < b</A></xml>",
}


def test_text_message_fields():
    fields = parse_fields(TEXT_XML)
    assert dict(fields) == {
        "ToUserName": "gh_123",
        "FromUserName": "oUser",
        "CreateTime": "1714000000",
        "MsgType": "text",
        "Content": "hello",
        "MsgId": "1234567890123456",
    }
    assert list(fields) == ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId"]


def test_result_is_read_only():
    fields = parse_fields(TEXT_XML)
    with pytest.raises(TypeError):
        fields["Content"] = "changed"  # type: ignore[index]


def test_xml_vectors_parse(xml_request_vector):
    fields = parse_fields(xml_request_vector["plaintext_msg"].encode("utf-8"))
    assert fields["MsgType"] in ("text", "event")
    assert fields["ToUserName"] and fields["FromUserName"] and fields["CreateTime"].isdigit()


def test_cdata_text_is_kept_verbatim():
    body = "<xml><A><![CDATA[ <b>&amp; 中文 😀\n ]]></A><B>a &amp; b &lt; c</B><C></C><D/><E><![CDATA[]]></E></xml>"
    assert dict(parse_fields(body.encode())) == {"A": " <b>&amp; 中文 😀\n ", "B": "a & b < c", "C": "", "D": "", "E": ""}


def test_split_cdata_sections_join():
    assert parse_fields(b"<xml><A><![CDATA[a]]]]><![CDATA[>b]]></A></xml>")["A"] == "a]]>b"


def test_nested_fields_become_dotted_paths_and_repeats_are_numbered():
    body = (
        b"<xml><SendPicsInfo><Count>3</Count><PicList>"
        b"<item><PicMd5Sum>a</PicMd5Sum></item>"
        b"<item><PicMd5Sum>b</PicMd5Sum></item>"
        b"<item><PicMd5Sum>c</PicMd5Sum></item>"
        b"</PicList></SendPicsInfo><Tag>x</Tag><Tag>y</Tag></xml>"
    )
    assert dict(parse_fields(body)) == {
        "SendPicsInfo.Count": "3",
        "SendPicsInfo.PicList.item.PicMd5Sum": "a",
        "SendPicsInfo.PicList.item#2.PicMd5Sum": "b",
        "SendPicsInfo.PicList.item#3.PicMd5Sum": "c",
        "Tag": "x",
        "Tag#2": "y",
    }


def test_comments_and_processing_instructions_are_dropped():
    body = b'<?xml version="1.0" encoding="UTF-8"?><!-- c --><?pi x?><xml><!-- c --><A>1<!-- c -->2<?pi y?></A></xml>'
    assert dict(parse_fields(body)) == {"A": "12"}


def test_stylesheet_instruction_is_dropped_not_applied():
    body = b'<?xml-stylesheet type="text/xsl" href="file:///etc/passwd"?><xml><A>1</A></xml>'
    assert dict(parse_fields(body)) == {"A": "1"}


def test_doctype_inside_user_text_is_just_text():
    body = b"<xml><Content><![CDATA[<!DOCTYPE html><!ENTITY x 'y'> hi]]></Content></xml>"
    assert dict(parse_fields(body)) == {"Content": "<!DOCTYPE html><!ENTITY x 'y'> hi"}


def test_utf8_bom_and_declaration_are_accepted():
    body = '\ufeff<?xml version="1.0" encoding="UTF-8"?><xml><A>中文</A></xml>'.encode("utf-8")
    assert dict(parse_fields(body)) == {"A": "中文"}


@pytest.mark.parametrize("declared", ["GBK", "ISO-8859-1", "UTF-16", "no-such-charset"])
def test_body_is_always_read_as_utf8(declared):
    body = f'<?xml version="1.0" encoding="{declared}"?><xml><A>中文</A></xml>'.encode("utf-8")
    assert dict(parse_fields(body)) == {"A": "中文"}


@pytest.mark.parametrize("name", sorted(HOSTILE_DOCUMENTS))
def test_hostile_documents_are_refused(name):
    started = time.perf_counter()
    with pytest.raises(XMLError) as caught:
        parse_fields(HOSTILE_DOCUMENTS[name])
    assert time.perf_counter() - started < 1.0
    assert "root:x:" not in caught.value.message


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_documents_raise_xml_error(name):
    with pytest.raises(XMLError) as caught:
        parse_fields(MALFORMED[name])
    assert type(caught.value) is XMLError


@pytest.mark.parametrize(
    "body",
    [b"<root><A>1</A></root>", b"<XML><A>1</A></XML>", b'<xml xmlns="urn:x"><A>1</A></xml>', b"<p:xml xmlns:p='u'/>"],
)
def test_wrong_root_element(body):
    with pytest.raises(XMLError, match="root element must be <xml>"):
        parse_fields(body)


def test_too_large_body():
    body = b"<xml><A>" + b"x" * DEFAULT_MAX_BYTES + b"</A></xml>"
    with pytest.raises(TooLargeError):
        parse_fields(body)


def test_size_limit_is_configurable_and_inclusive():
    body = b"<xml><A>1234</A></xml>"
    assert parse_fields(body, max_bytes=len(body))["A"] == "1234"
    with pytest.raises(TooLargeError, match=f"body of {len(body)} bytes exceeds {len(body) - 1}"):
        parse_fields(body, max_bytes=len(body) - 1)


def test_size_is_checked_before_parsing():
    with pytest.raises(TooLargeError):
        parse_fields(BILLION_LAUGHS, max_bytes=100)


def nested(depth: int) -> bytes:
    return b"<xml>" + b"<a>" * depth + b"x" + b"</a>" * depth + b"</xml>"


def test_depth_limit_is_inclusive():
    fields = parse_fields(nested(DEFAULT_MAX_DEPTH))
    assert fields == {".".join(["a"] * DEFAULT_MAX_DEPTH): "x"}


@pytest.mark.parametrize("depth", [DEFAULT_MAX_DEPTH + 1, 20, 255, 256, 300, 5_000, 100_000])
def test_too_deep_nesting(depth):
    with pytest.raises(TooLargeError):
        parse_fields(nested(depth))


def test_depth_limit_is_configurable():
    assert parse_fields(nested(2), max_depth=2) == {"a.a": "x"}
    with pytest.raises(TooLargeError, match="nested deeper than 2"):
        parse_fields(nested(3), max_depth=2)


xml_text = st.text(
    st.characters(
        blacklist_categories=("Cs", "Cc"),
        blacklist_characters="\ufffe\uffff",
    )
    | st.sampled_from("\t\n"),
)
tags = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWYZabcdefghijklmnopqrstuvwyz_"),
    st.text("ABCXYZabcxyz0123456789_", max_size=15),
)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(tags, xml_text, max_size=8))
def test_render_fields_round_trip(fields):
    assert dict(parse_fields(render_fields(fields).encode("utf-8"))) == fields


def test_render_fields_escapes_cdata_terminator():
    fields = {"Content": "a]]>b]]>", "Other": "]]]]>"}
    assert dict(parse_fields(render_fields(fields).encode())) == fields


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_yield_fields_or_xml_error(body):
    try:
        fields = parse_fields(body)
    except WeChatError as exc:
        assert isinstance(exc, XMLError)
    else:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())
