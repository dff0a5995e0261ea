"""Seeded random requests to the ingress's HTTP surface.

Each request starts as a valid callback (signed, and sealed for a safe-mode account) and
goes through zero to three random mutations: the method, the path, the query string
(dropped, duplicated, garbled or malformed parameters), the headers (content types,
junk, oversized values, a short Content-Length, chunked bodies), the body (byte-level
edits, or replaced outright) and, for sealed callbacks, the ciphertext, corrupted and
then signed again so that it gets past the signature to the decryption. The same seed
and index give the same request (up to the clock and AES's random prefix), so that a
failing case can be named and replayed.

Its users' openids start with FUZZ_PREFIX, so that what fuzzed callbacks that were
accepted get into topics and replies can be told apart.
"""

from __future__ import annotations

import base64
import random
import string
from dataclasses import dataclass, replace
from typing import Callable, Sequence
from urllib.parse import parse_qsl, quote

from app.accounts import Account
from app.wechat import WeChatError, signature
from app.wechat.xmlparse import parse_fields, render_fields
from chaos.hostile import callback_request, text_fields
from chaos.http import RawRequest

__all__ = ("FUZZ_PREFIX", "FuzzCase", "Fuzzer")

FUZZ_PREFIX = "o_fuzz_"
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "post", "PROPFIND", "GE", "X" * 40)
PATHS = (
    "/", "/wechat", "/wechat/", "/wechat/{a}/", "//wechat//{a}", "/wechat/{a}/extra", "/wechat/%7Ba%7D",
    "/wechat/../healthz", "/%2e%2e/wechat/{a}", "/wechat/%00", "/wechat/{a}%00", "/wechat/账号", "/healthz",
    "/readyz", "/metrics", "/wechat/" + "a" * 3000, "*", "/wechat/{a}%2F..", "/WECHAT/{a}",
)
QUERY_KEYS = ("timestamp", "nonce", "signature", "msg_signature", "encrypt_type", "echostr", "openid")
QUERY_VALUES = (
    "", "0", "-1", "1e10", "9" * 40, "NaN", "aes", "AES", "raw", "%00", "\u00e9\u4e2d", "x" * 5000, "../../etc/passwd",
    "'; DROP TABLE users; --", "<xml/>", "\r\nX-Injected: 1",
)
QUERY_JUNK = ("&&&", "=", "%zz", "%E4%B8", "&timestamp", "&=x", "#frag", "&" + "k=v&" * 200, "%")
CONTENT_TYPES = (
    "text/xml", "application/xml", "text/plain", "application/octet-stream", "text/xml; charset=gbk",
    "text/xml; charset=utf-16", "application/json", "multipart/form-data; boundary=x", "", ";;;", "text/xml; x=\"",
)
BODY_TOKENS = (
    b"<", b">", b"]]>", b"<![CDATA[", b"&amp;", b"&#0;", b"&#x10FFFF;", b"<xml>", b"</xml>", b"<!DOCTYPE xml>",
    b'<!ENTITY e "x">', b"<!-- -->", b"<?pi?>", b"\x00", b"\xff\xfe", b"\xef\xbb\xbf", b"<Encrypt>QUJD</Encrypt>",
    b"<MsgType>event</MsgType>", b"<a><a><a><a><a><a><a><a>",
)
BODIES = (
    b"", b"success", b"{}", b"<xml/>", b"<xml><Encrypt></Encrypt></xml>",
    b"<xml><Encrypt><![CDATA[%%%]]></Encrypt></xml>", b"\x00" * 64, b"<" * 10_000,
    b"<xml>" + b"<a>" * 300 + b"</a>" * 300 + b"</xml>",
)

Mutation = Callable[[random.Random, RawRequest, Account], RawRequest]


@dataclass(frozen=True)
class FuzzCase:
    index: int
    request: RawRequest
    mutations: tuple[str, ...]  # how it was made from a valid callback; () for none


def _split(request: RawRequest) -> tuple[str, list[tuple[str, str]]]:
    path, _, query = request.target.partition("?")
    return path, parse_qsl(query, keep_blank_values=True)


def _join(path: str, query: list[tuple[str, str]]) -> str:
    return path + ("?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query) if query else "")


def method(rng: random.Random, request: RawRequest, account: Account) -> RawRequest:
    return replace(request, method=rng.choice(METHODS))


def path(rng: random.Random, request: RawRequest, account: Account) -> RawRequest:
    query = request.target.partition("?")[2]
    return replace(request, target=rng.choice(PATHS).replace("{a}", account.name) + (f"?{query}" if query else ""))


def query_params(rng: random.Random, request: RawRequest, account: Account) -> RawRequest:
    """Drop, duplicate or garble parameters."""
    path_, query = _split(request)
    for _ in range(rng.randint(1, 3)):
        op = rng.choice(("drop", "duplicate", "garble", "add"))
        if op == "drop" and query:
            query.pop(rng.randrange(len(query)))
        elif op == "duplicate" and query:
            key, _ = rng.choice(query)
            query.append((key, rng.choice(QUERY_VALUES)))
        elif op == "garble" and query:
            i = rng.randrange(len(query))
            query[i] = (query[i][0], rng.choice(QUERY_VALUES))
        else:
            query.append((rng.choice(QUERY_KEYS), rng.choice(QUERY_VALUES)))
    return replace(request, target=_join(path_, query))


def query_junk(rng: random.Random, request: RawRequest, account: Account) -> RawRequest:
    """Bytes no URL encoder writes, appended to the target."""
    return replace(request, target=request.target + ("?" if "?" not in request.target else "") + rng.choice(QUERY_JUNK))


def headers(rng: random.Random, request: RawRequest, account: Account) -> RawRequest:
    extra = [("Content-Type", rng.choice(CONTENT_TYPES))]
    op = rng.choice(("type", "junk", "huge", "short length", "duplicate type", "expect"))
    if op == "junk":
        name = "".join(rng.choices(string.ascii_letters + "-", k=rng.randint(1, 20)))
        extra.append((name, "".join(rng.choices(string.printable[:94], k=rng.randint(0, 40)))))
    elif op == "huge":
        extra.append(("X-Padding", "p" * rng.choice((1000, 9000, 20000))))
    elif op == "short length" and request.body:
        extra.append(("Content-Length", str(rng.randrange(len(request.body)))))
    elif op == "duplicate type":
        extra.append(("Content-Type", rng.choice(CONTENT_TYPES)))
    elif op == "expect":
        extra.append(("Expect", "100-continue"))
    return replace(request, headers=tuple(extra))


def chunked(rng: random.Random, request: RawRequest, account: Account) -> RawRequest:
    return replace(request, chunked=True)


def body_edits(rng: random.Random, request: RawRequest, account: Account) -> RawRequest:
    """1 to 4 byte-level edits: flips, deletions, inserted tokens or bytes, truncation,
    a duplicated span."""
    data = bytearray(request.body)
    for _ in range(rng.randint(1, 4)):
        op = rng.choice(("flip", "delete", "insert", "truncate", "duplicate")) if data else "insert"
        i = rng.randrange(len(data) + 1)
        if op == "flip" and i < len(data):
            data[i] ^= rng.randint(1, 255)
        elif op == "delete":
            del data[i : i + rng.randint(1, 16)]
        elif op == "insert":
            data[i:i] = rng.choice(BODY_TOKENS) if rng.random() < 0.7 else rng.randbytes(rng.randint(1, 8))
        elif op == "truncate":
            del data[i:]
        else:
            data[i:i] = data[i : i + rng.randint(1, 32)]
    return replace(request, body=bytes(data))


def body_swap(rng: random.Random, request: RawRequest, account: Account) -> RawRequest:
    body = rng.choice(BODIES) if rng.random() < 0.7 else rng.randbytes(rng.randint(1, 2048))
    return replace(request, body=body)


def ciphertext(rng: random.Random, request: RawRequest, account: Account) -> RawRequest:
    """Corrupt the sealed message, then sign the envelope again: it passes the signature
    and fails (or, rarely, survives) the decryption."""
    try:
        encrypt = parse_fields(request.body).get("Encrypt")
    except WeChatError:  # an earlier mutation broke the envelope: nothing to corrupt
        return request
    if not encrypt:
        return request
    op = rng.choice(("flip", "truncate", "extend", "random", "not base64", "whitespace"))
    if op == "flip":
        i = rng.randrange(len(encrypt))
        corrupt = encrypt[:i] + rng.choice(string.ascii_letters.replace(encrypt[i], "")) + encrypt[i + 1 :]
    elif op == "truncate":
        corrupt = encrypt[: rng.randrange(len(encrypt))]
    elif op == "extend":
        corrupt = encrypt + base64.b64encode(rng.randbytes(16 * rng.randint(1, 4))).decode()
    elif op == "random":
        corrupt = base64.b64encode(rng.randbytes(16 * rng.randint(1, 64))).decode()
    elif op == "not base64":
        corrupt = encrypt[:10] + "!*?" + encrypt[13:]
    else:
        corrupt = encrypt[:30] + "\n " + encrypt[30:]
    path_, query = _split(request)
    values = dict(query)
    signed = signature.sign(account.token, values.get("timestamp", ""), values.get("nonce", ""), corrupt)
    query = [(k, signed if k == "msg_signature" else v) for k, v in query]
    return replace(request, target=_join(path_, query), body=request.body.replace(encrypt.encode(), corrupt.encode()))


# In the order they apply: the framing (headers, chunked) last, so that a Content-Length
# it declares matches the final body; a longer one would leave the server waiting.
MUTATIONS: dict[str, Mutation] = {
    "method": method,
    "path": path,
    "query params": query_params,
    "query junk": query_junk,
    "body edits": body_edits,
    "body swap": body_swap,
    "ciphertext": ciphertext,
    "headers": headers,
    "chunked": chunked,
}
WEIGHTS = {"ciphertext": 4, "body edits": 3, "query params": 2}  # the rest weigh 1


@dataclass(frozen=True)
class Fuzzer:
    accounts: Sequence[Account]
    seed: int = 0
    first_msg_id: int = 0

    def case(self, index: int, now: int) -> FuzzCase:
        """Request number `index` of this seed, timestamped `now`."""
        rng = random.Random(f"fuzz:{self.seed}:{index}")
        account = rng.choice(self.accounts)
        msg_id = self.first_msg_id + index
        xml = render_fields(text_fields(f"{FUZZ_PREFIX}{index % 100}", msg_id, f"fuzz {index}", now))
        nonce = str(rng.randrange(10**9, 10**10))
        request = callback_request(account, xml, now=now, nonce=nonce, encrypted=account.mode == "safe")
        names = list(MUTATIONS)
        picked = rng.choices(names, [WEIGHTS.get(n, 1) for n in names], k=rng.choice((0, 1, 1, 2, 2, 3)))
        chosen = sorted(picked, key=names.index)
        for name in chosen:
            request = MUTATIONS[name](rng, request, account)
        return FuzzCase(index, request, tuple(chosen))
