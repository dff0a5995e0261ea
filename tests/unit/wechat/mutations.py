"""Hypothesis strategies shared by the fuzz tests: WeChat bodies and byte-level mutations."""

from __future__ import annotations

from hypothesis import strategies as st

SEEDS = [
    b"<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[oUser]]></FromUserName>"
    b"<CreateTime>1714000000</CreateTime><MsgType><![CDATA[text]]></MsgType>"
    b"<Content><![CDATA[hello]]></Content><MsgId>6054768590064713728</MsgId></xml>",
    b"<xml><ToUserName>gh_1</ToUserName><FromUserName>oUser</FromUserName><CreateTime>1714000000</CreateTime>"
    b"<MsgType>location</MsgType><Location_X>23.1</Location_X><Location_Y>113.3</Location_Y><Scale>20</Scale>"
    b"<Label>x</Label><MsgId>1</MsgId></xml>",
    b"<xml><ToUserName>gh_1</ToUserName><FromUserName>oUser</FromUserName><CreateTime>1714000000</CreateTime>"
    b"<MsgType>event</MsgType><Event>pic_sysphoto</Event><EventKey>6</EventKey><SendPicsInfo><Count>2</Count>"
    b"<PicList><item><PicMd5Sum>a</PicMd5Sum></item><item><PicMd5Sum>b</PicMd5Sum></item></PicList>"
    b"</SendPicsInfo></xml>",
    b"<xml><ToUserName>gh_1</ToUserName><FromUserName>oUser</FromUserName><CreateTime>1714000000</CreateTime>"
    b"<MsgType>event</MsgType><Event>MASSSENDJOBFINISH</Event><MsgID>1</MsgID><TotalCount>3</TotalCount></xml>",
]
TOKENS = [
    b"<", b">", b"/", b"&", b"]]>", b"<![CDATA[", b"&amp;", b"&#0;", b"&#x10FFFF;", b"&lt;", b"<a>", b"</a>",
    b"<xml>", b"</xml>", b"<!DOCTYPE xml>", b'<!ENTITY e "x">', b"<!-- -->", b"<?pi?>", b"\x00", b"\xff",
    b"\xef\xbb\xbf", b"\xc3", b"\r\n", b"<MsgId>x</MsgId>", b"<CreateTime>-1</CreateTime>", b"<a><a><a><a><a><a><a>",
    b'<?xml version="1.0" encoding="UTF-16"?>', b"<MsgType>event</MsgType>", b"<Encrypt>QUJD</Encrypt>",
]


@st.composite
def mutated(draw, original: bytes, tokens: list[bytes] = TOKENS) -> bytes:
    """`original` with 1 to 4 byte-level edits: flips, deletions, insertions of `tokens` or
    random bytes, truncation, duplication of a span."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "delete", "insert", "truncate", "duplicate"]))
        if not data:
            op = "insert"
        if op == "flip":
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= draw(st.integers(1, 255))
        elif op == "delete":
            i = draw(st.integers(0, len(data) - 1))
            del data[i : i + draw(st.integers(1, 16))]
        elif op == "insert":
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(st.sampled_from(tokens) | st.binary(min_size=1, max_size=8))
        elif op == "truncate":
            del data[draw(st.integers(0, len(data) - 1)) :]
        else:
            i = draw(st.integers(0, len(data) - 1))
            j = draw(st.integers(i, min(len(data), i + 32)))
            data[j:j] = data[i:j]
    return bytes(data)
