"""Requests no WeChat server sends, each with the answer the ingress must give it.

Forged, missing and stale signatures (403), bodies over the size limit (413), and hostile
XML (XXE, billion laughs, quadratic blow-up, deep nesting), sent both in the clear and
sealed in a correctly signed AES envelope so that they reach the XML parser past every
earlier check: a DTD is refused (400); entity amplification and nesting deeper than
WeChat ever sends hit the parser's limits (413) before anything is expanded. Every message in
them comes from a user whose openid starts with HOSTILE_PREFIX, so that anything they
get into a topic can be told apart from real traffic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from functools import partial
from typing import Callable, Iterator
from urllib.parse import parse_qsl

from app.accounts import Account
from app.wechat import signature
from app.wechat.xmlparse import DEFAULT_MAX_DEPTH, parse_fields, render_fields
from chaos.http import RawRequest, target

__all__ = ("HOSTILE_PREFIX", "Hostile", "hostile_requests", "callback_request", "text_fields")

HOSTILE_PREFIX = "o_hostile_"
XML_HEADERS = (("Content-Type", "text/xml"),)
FORGED = (403, "bad_signature")
STALE = (403, "stale_timestamp")
TOO_LARGE = (413, "too_large")
BAD_XML = (400, "bad_xml")


@dataclass(frozen=True)
class Hostile:
    name: str
    request: RawRequest
    status: int  # the status the ingress must answer with
    reason: str | None = None  # and the first line of its body, where it names one


def text_fields(openid: str, msg_id: int, text: str, now: int) -> dict[str, str]:
    return {
        "ToUserName": "gh_chaos",
        "FromUserName": openid,
        "CreateTime": str(now),
        "MsgType": "text",
        "Content": text,
        "MsgId": str(msg_id),
    }


def callback_request(
    account: Account, xml: str, *, now: int, nonce: str, encrypted: bool, body: bytes | None = None
) -> RawRequest:
    """A callback signed as WeChat signs it; `body` replaces the signed body (in plain
    mode the signature does not cover the body)."""
    query, signed = account.codec.encode_callback(xml, timestamp=str(now), nonce=nonce, encrypted=encrypted)
    return RawRequest("POST", target(f"/wechat/{account.name}", query), XML_HEADERS, signed if body is None else body)


def _document(openid: str, msg_id: int, now: int, doctype: str, content: str) -> str:
    """A complete text message behind a DOCTYPE: if the DTD were honoured, it would pass."""
    fields = text_fields(openid, msg_id, "", now)
    xml = render_fields(fields).replace("<Content><![CDATA[]]></Content>", f"<Content>{content}</Content>")
    return f'<?xml version="1.0"?>\n{doctype}\n{xml}'


def _xxe(openid: str, msg_id: int, now: int) -> str:
    doctype = '<!DOCTYPE xml [<!ENTITY secret SYSTEM "file:///etc/hostname">]>'
    return _document(openid, msg_id, now, doctype, "&secret;")


def _xxe_parameter(openid: str, msg_id: int, now: int) -> str:
    doctype = '<!DOCTYPE xml [<!ENTITY % outside SYSTEM "http://127.0.0.1:9/evil.dtd"> %outside;]>'
    return _document(openid, msg_id, now, doctype, "hello")


def _billion_laughs(openid: str, msg_id: int, now: int) -> str:
    levels = ['<!ENTITY ha0 "ha">'] + [f'<!ENTITY ha{i} "{f"&ha{i - 1};" * 10}">' for i in range(1, 10)]
    return _document(openid, msg_id, now, f"<!DOCTYPE xml [{''.join(levels)}]>", "&ha9;")


def _quadratic(openid: str, msg_id: int, now: int, size: int) -> str:
    """One large entity referenced many times, about `size` bytes in all."""
    entity = "B" * (size // 3)
    refs = "&b;" * ((size - len(entity) - 400) // 3)
    return _document(openid, msg_id, now, f'<!DOCTYPE xml [<!ENTITY b "{entity}">]>', refs)


def _nested(openid: str, msg_id: int, now: int, depth: int) -> str:
    fields = render_fields(text_fields(openid, msg_id, "deep", now))
    return fields.replace("</xml>", "<a>" * depth + "x" + "</a>" * depth + "</xml>")


def _query(request: RawRequest) -> tuple[str, dict[str, str]]:
    path, _, query = request.target.partition("?")
    return path, dict(parse_qsl(query, keep_blank_values=True))


def _with_query(request: RawRequest, **changes: str | None) -> RawRequest:
    """`request` with query parameters set, or dropped where the value is None."""
    path, query = _query(request)
    query = {k: v for k, v in {**query, **changes}.items() if v is not None}
    return replace(request, target=target(path, query))


def _json_typed(request: RawRequest) -> RawRequest:
    return replace(request, headers=(("Content-Type", "application/json"),))


def _to_path(request: RawRequest, path: str) -> RawRequest:
    return replace(request, target=target(path, _query(request)[1]))


def _truncated(account: Account, request: RawRequest) -> RawRequest:
    """The envelope with its ciphertext cut short of a whole AES block, correctly signed
    again, so that it gets past the signature to the decryption."""
    path, query = _query(request)
    encrypt = parse_fields(request.body)["Encrypt"]
    cut = encrypt[:-24]  # 18 bytes fewer: no longer a multiple of 16
    query["msg_signature"] = signature.sign(account.token, query["timestamp"], query["nonce"], cut)
    return replace(request, target=target(path, query), body=request.body.replace(encrypt.encode(), cut.encode()))


@dataclass
class _Builder:
    safe: Account  # safe mode
    plain: Account  # plain mode
    now: int
    rng: random.Random
    msg_ids: Iterator[int]

    def user(self) -> tuple[str, int]:
        msg_id = next(self.msg_ids)
        return f"{HOSTILE_PREFIX}{msg_id}", msg_id

    def nonce(self) -> str:
        return str(self.rng.randrange(10**9, 10**10))

    def valid(self, account: Account, *, encrypted: bool, at: int | None = None) -> RawRequest:
        at = self.now if at is None else at
        xml = render_fields(text_fields(*self.user(), "hostile", at))
        return callback_request(account, xml, now=at, nonce=self.nonce(), encrypted=encrypted)

    def plain_body(self, body: bytes) -> RawRequest:
        return callback_request(self.plain, "", now=self.now, nonce=self.nonce(), encrypted=False, body=body)

    def plain_doc(self, make: Callable[[str, int, int], str]) -> RawRequest:
        return self.plain_body(make(*self.user(), self.now).encode("utf-8"))

    def sealed(self, make: Callable[[str, int, int], str]) -> RawRequest:
        xml = make(*self.user(), self.now)
        return callback_request(self.safe, xml, now=self.now, nonce=self.nonce(), encrypted=True)


def hostile_requests(
    safe: Account, plain: Account, *, now: int, rng: random.Random, max_body_bytes: int, first_msg_id: int
) -> list[Hostile]:
    """One of each hostile request; `safe` is an account in safe mode, `plain` one in plain
    mode. Their messages get MsgIds from `first_msg_id` on."""
    b = _Builder(safe, plain, now, rng, iter(range(first_msg_id, first_msg_id + 1000)))
    keys = safe.aes_keys
    wrong_token = Account(name=safe.name, token=safe.token + "x", appid=safe.appid, mode="safe", aes_keys=keys)
    other_appid = Account(name=safe.name, token=safe.token, appid="wx" + "0" * 16, mode="safe", aes_keys=keys)
    forged = f"{rng.getrandbits(160):040x}"
    oversized = b"<xml>" + b"x" * (max_body_bytes + 1024) + b"</xml>"
    utf16 = _xxe(*b.user(), now).replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>')
    return [
        Hostile("forged signature", _with_query(b.valid(safe, encrypted=True), msg_signature=forged), *FORGED),
        Hostile("forged signature, plain", _with_query(b.valid(plain, encrypted=False), signature=forged), *FORGED),
        Hostile("unsigned", _with_query(b.valid(safe, encrypted=True), signature=None, msg_signature=None), *FORGED),
        Hostile("signed with another token", b.valid(wrong_token, encrypted=True), *FORGED),
        Hostile("stale timestamp", b.valid(safe, encrypted=True, at=now - 3600), *STALE),
        Hostile("future timestamp", b.valid(plain, encrypted=False, at=now + 3600), *STALE),
        Hostile("oversized body", b.plain_body(oversized), *TOO_LARGE),
        Hostile("oversized chunked body", replace(b.plain_body(oversized), chunked=True), *TOO_LARGE),
        Hostile("XXE", b.plain_doc(_xxe), *BAD_XML),
        Hostile("XXE, sealed", b.sealed(_xxe), *BAD_XML),
        Hostile("XXE parameter entity", b.plain_doc(_xxe_parameter), *BAD_XML),
        Hostile("XXE in UTF-16", b.plain_body(utf16.encode("utf-16")), *BAD_XML),
        Hostile("billion laughs", b.plain_doc(_billion_laughs), *TOO_LARGE),
        Hostile("billion laughs, sealed", b.sealed(_billion_laughs), *TOO_LARGE),
        Hostile("quadratic blow-up", b.plain_doc(partial(_quadratic, size=max_body_bytes - 1024)), *TOO_LARGE),
        Hostile("quadratic blow-up, too big", b.plain_doc(partial(_quadratic, size=max_body_bytes + 99)), *TOO_LARGE),
        Hostile("nesting a level too deep", b.plain_doc(partial(_nested, depth=DEFAULT_MAX_DEPTH + 1)), *TOO_LARGE),
        Hostile("deep nesting", b.plain_doc(partial(_nested, depth=5000)), *TOO_LARGE),
        Hostile("deep nesting, sealed", b.sealed(partial(_nested, depth=1000)), *TOO_LARGE),
        Hostile("truncated ciphertext", _truncated(safe, b.valid(safe, encrypted=True)), 400, "bad_ciphertext"),
        Hostile("sealed for another appid", b.valid(other_appid, encrypted=True), 400, "wrong_appid"),
        Hostile("unencrypted to a safe-mode account", b.valid(safe, encrypted=False), 400, "wrong_mode"),
        Hostile("unknown account", _to_path(b.valid(plain, encrypted=False), "/wechat/nobody"), 404),
        Hostile("wrong content type", _json_typed(b.valid(plain, encrypted=False)), 415, "bad_content_type"),
    ]
