"""The flat fast path against libxml2: where it answers, it answers as the full parser does."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.wechat import xmlparse
from app.wechat.errors import WeChatError
from app.wechat.flatxml import flat_fields
from app.wechat.xmlparse import parse_fields, tree_fields
from tests.unit.wechat.mutations import SEEDS, TOKENS, mutated

ENVELOPE = (
    b"<xml>\n    <ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n"
    b"    <Encrypt><![CDATA[MNn4+jJ/VsFh2gUyKAaOJArwEVYCvVmyN0iXzNaHDkyT5Ki]]></Encrypt>\n</xml>\n"
)
TEXT = (
    "<xml><ToUserName><![CDATA[gh_3f9a1c2b7d4e]]></ToUserName>\n"
    "<FromUserName><![CDATA[oTqB-5Zk9xW3cLmN0pQrStUvWxYz]]></FromUserName>\n"
    "<CreateTime>1732000000</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n"
    "<Content><![CDATA[你好 <b>&amp; ]] ]> 😀\t]]></Content>\n<MsgId>24871234567890123</MsgId>\n</xml>"
).encode()

# Each of these is left to libxml2, which accepts or refuses it on its own terms.
NOT_FLAT = {
    "declaration": b'<?xml version="1.0" encoding="utf-8"?><xml><A>1</A></xml>',
    "bom": b"\xef\xbb\xbf<xml><A>1</A></xml>",
    "leading_whitespace": b" <xml><A>1</A></xml>",
    "doctype": b"<!DOCTYPE xml><xml><A>1</A></xml>",
    "doctype_in_root": b'<xml><!ENTITY a "b"><A>1</A></xml>',
    "comment": b"<xml><!-- c --><A>1</A></xml>",
    "processing_instruction": b"<xml><?pi x?><A>1</A></xml>",
    "root_attribute": b'<xml a="1"><A>1</A></xml>',
    "field_attribute": b'<xml><A a="1">1</A></xml>',
    "empty_root": b"<xml/>",
    "empty_field": b"<xml><A/></xml>",
    "entity_reference": b"<xml><A>a &amp; b</A></xml>",
    "character_reference": b"<xml><A>&#65;</A></xml>",
    "undefined_entity": b"<xml><A>&nope;</A></xml>",
    "nested": b"<xml><A><B>1</B></A></xml>",
    "repeated_tag": b"<xml><A>1</A><A>2</A></xml>",
    "split_cdata": b"<xml><A><![CDATA[a]]]]><![CDATA[>b]]></A></xml>",
    "text_and_cdata": b"<xml><A>a<![CDATA[b]]></A></xml>",
    "cdata_terminator_in_text": b"<xml><A>a]]>b</A></xml>",
    "carriage_return_in_text": b"<xml><A>a\r\nb</A></xml>",
    "carriage_return_between": b"<xml>\r\n<A>1</A>\r\n</xml>",
    "nul": b"<xml><A>\x00</A></xml>",
    "control": b"<xml><A><![CDATA[\x1b]]></A></xml>",
    "non_character": "<xml><A>\ufffe</A></xml>".encode(),
    "invalid_utf8": b"<xml><A>\xff</A></xml>",
    "text_in_root": b"<xml>x<A>1</A></xml>",
    "mismatched": b"<xml><A>1</B></xml>",
    "unclosed": b"<xml><A>1</A>",
    "wrong_root": b"<root><A>1</A></root>",
    "two_roots": b"<xml><A>1</A></xml><xml/>",
    "non_ascii_name": "<xml><名>1</名></xml>".encode(),
    "namespaced_name": b"<xml><p:A>1</p:A></xml>",
    "long_name": b"<xml><" + b"A" * 65 + b">1</" + b"A" * 65 + b"></xml>",
}


def test_wechat_shapes_take_the_fast_path():
    assert flat_fields(ENVELOPE) == tree_fields(ENVELOPE) == {
        "ToUserName": "wx5823bf96d3bd56c7",
        "Encrypt": "MNn4+jJ/VsFh2gUyKAaOJArwEVYCvVmyN0iXzNaHDkyT5Ki",
    }
    assert flat_fields(TEXT) == tree_fields(TEXT)
    assert flat_fields(TEXT)["Content"] == "你好 <b>&amp; ]] ]> 😀\t"
    assert flat_fields(b"<xml><A></A><B><![CDATA[]]></B><C> </C></xml>") == {"A": "", "B": "", "C": " "}


@pytest.mark.parametrize("name", sorted(NOT_FLAT))
def test_other_shapes_are_left_to_libxml2(name):
    assert flat_fields(NOT_FLAT[name]) is None


def test_parse_fields_reads_flat_bodies_without_libxml2(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("libxml2 was asked")

    monkeypatch.setattr(xmlparse, "tree_fields", refuse)
    assert dict(parse_fields(TEXT)) == flat_fields(TEXT)
    assert parse_fields(ENVELOPE)["Encrypt"].startswith("MNn4")


def test_limits_still_apply_to_flat_bodies():
    with pytest.raises(WeChatError, match="exceeds"):
        parse_fields(TEXT, max_bytes=len(TEXT) - 1)
    with pytest.raises(WeChatError, match="nested deeper than 0"):
        parse_fields(TEXT, max_depth=0)


def assert_agrees_with_libxml2(body: bytes) -> None:
    flat = flat_fields(body)
    if flat is not None:
        assert tree_fields(body) == flat


AGREE = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
any_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=24)
xml_chars = st.sampled_from(["<", "&", "]", "]]>", ">", "\t", "\n", "\r", "\x85", "\u2028", "\ufffe", "\ufdd0", "😀"])
texts = st.lists(any_text | xml_chars, max_size=4).map("".join)
whitespace = st.text(" \t\n", max_size=3)


@st.composite
def flat_documents(draw) -> bytes:
    """`<xml>` with fields as WeChat writes them, quoted or not, around arbitrary text."""
    parts = ["<xml>", draw(whitespace)]
    for name, text in draw(st.lists(st.tuples(names, texts), max_size=6)):
        value = f"<![CDATA[{text}]]>" if draw(st.booleans()) else text
        parts += [f"<{name}>{value}</{name}>", draw(whitespace)]
    parts += ["</xml>", draw(whitespace)]
    return "".join(parts).encode("utf-8")


@AGREE
@given(body=flat_documents())
def test_flat_documents_agree(body):
    assert_agrees_with_libxml2(body)


@settings(AGREE, max_examples=200)
@given(body=flat_documents().flatmap(lambda body: mutated(body, TOKENS + [b"\r", b"\t", b"]", b"]]", b"\xc2\x85"])))
def test_mutated_documents_agree(body):
    assert_agrees_with_libxml2(body)


@AGREE
@given(body=st.sampled_from(SEEDS + [ENVELOPE, TEXT]).flatmap(mutated))
def test_mutated_callbacks_agree(body):
    assert_agrees_with_libxml2(body)


@AGREE
@given(body=st.binary(max_size=64).map(lambda junk: b"<xml><A>" + junk + b"</A></xml>"))
def test_arbitrary_bytes_in_a_field_agree(body):
    assert_agrees_with_libxml2(body)


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><A><![CDATA[" + b"]]" * 200_000 + b"</A></xml>",
        b"<xml><A><![CDATA[" + b"]" * 400_000 + b"</A></xml>",
        b"<xml>" + b"<A>" * 100_000 + b"</xml>",
        b"<xml>" + b"".join(b"<A%d>x</A%d>\n" % (i, i) for i in range(50_000)) + b"<A>",
    ],
    ids=["near_terminators", "brackets", "open_tags", "many_fields_then_junk"],
)
def test_matching_is_linear(body):
    started = time.perf_counter()
    assert flat_fields(body) is None
    assert time.perf_counter() - started < 1.0
