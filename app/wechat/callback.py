"""One callback in, one typed message out: signature, mode, decryption and parsing.

`CallbackCodec` holds one account's secrets and is the single code path that the
ingress and `wxstream decode` share. It is pure: the clock and randomness come in as
arguments.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from itertools import repeat
from typing import Callable, Literal, Mapping, Sequence

from app.wechat import signature
from app.wechat.crypto import MessageCrypto
from app.wechat.errors import ModeError, XMLError
from app.wechat.messages import Message, from_fields
from app.wechat.replies import Ack, Reply, cdata, render
from app.wechat.xmlparse import DEFAULT_MAX_BYTES, parse_fields

__all__ = ("Mode", "CallbackQuery", "Decoded", "CallbackCodec")

Mode = Literal["plain", "compat", "safe"]
MODES: tuple[Mode, ...] = ("plain", "compat", "safe")


@dataclass(frozen=True, slots=True)
class CallbackQuery:
    """The query-string parameters WeChat signs a callback with."""

    timestamp: str = ""
    nonce: str = ""
    signature: str = ""
    msg_signature: str = ""
    encrypt_type: str = ""
    echostr: str = ""
    openid: str = ""

    @classmethod
    def from_mapping(cls, query: Mapping[str, str]) -> "CallbackQuery":
        return cls(*map(query.get, cls.__slots__, repeat("")))  # the slots are the fields, in order

    @property
    def encrypted(self) -> bool:
        return self.encrypt_type.lower() == "aes"


@dataclass(frozen=True, slots=True)
class Decoded:
    """A verified callback: the message, whether it came encrypted, which key opened it."""

    message: Message
    encrypted: bool
    key_index: int | None = None


def _check_fresh(query: CallbackQuery, now: float | None, window_s: float) -> None:
    if now is not None:
        signature.check_timestamp(query.timestamp, now, window_s)


class CallbackCodec:
    """Verifies and decodes callbacks for one account, and encodes its passive replies.

    The ingress calls it from its event loop's thread, but one codec may serve several
    threads: the XML parser is per thread, decryption uses stateless ciphers, and
    encryption's one cipher is behind a lock.
    """

    def __init__(
        self,
        *,
        token: str,
        appid: str,
        mode: Mode,
        aes_keys: Sequence[str] = (),
        max_bytes: int = DEFAULT_MAX_BYTES,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mode != "plain" and not aes_keys:
            raise ValueError(f"mode {mode!r} needs at least one EncodingAESKey")
        self.token = token
        self.appid = appid
        self.mode = mode
        self.max_bytes = max_bytes
        self.crypto = MessageCrypto(appid, aes_keys, random_bytes) if aes_keys else None

    def verify_url(self, query: CallbackQuery, *, now: float | None = None, window_s: float = 0.0) -> str:
        """GET URL verification: the `echostr` to answer with when the signature is valid
        (and, given `now`, its timestamp within `window_s` of it)."""
        signature.verify(query.signature, self.token, query.timestamp, query.nonce)
        _check_fresh(query, now, window_s)
        return query.echostr

    def decode(self, query: CallbackQuery, body: bytes, *, now: float | None = None, window_s: float = 0.0) -> Decoded:
        """Verify and decode a POSTed callback according to the account's mode. Given
        `now`, a correctly signed callback whose timestamp is further than `window_s` from
        it is a replay (TimestampError), found before the message is parsed or decrypted."""
        if query.encrypted:
            if self.mode == "plain" or self.crypto is None:
                raise ModeError("encrypted callback for an account in plain mode")
            return self._decode_encrypted(query, body, now, window_s)
        if self.mode == "safe":
            raise ModeError("unencrypted callback for an account in safe mode")
        signature.verify(query.signature, self.token, query.timestamp, query.nonce)
        _check_fresh(query, now, window_s)
        return Decoded(from_fields(parse_fields(body, max_bytes=self.max_bytes)), encrypted=False)

    def _decode_encrypted(self, query: CallbackQuery, body: bytes, now: float | None, window_s: float) -> Decoded:
        assert self.crypto is not None
        encrypt = parse_fields(body, max_bytes=self.max_bytes).get("Encrypt")
        if not encrypt:
            raise XMLError("encrypted callback without an <Encrypt> element")
        signature.verify(query.msg_signature, self.token, query.timestamp, query.nonce, encrypt)
        _check_fresh(query, now, window_s)
        opened = self.crypto.decrypt(encrypt)
        fields = parse_fields(opened.message, max_bytes=self.max_bytes)
        return Decoded(from_fields(fields), encrypted=True, key_index=opened.key_index)

    def encode_callback(
        self, xml: str, *, timestamp: str, nonce: str, encrypted: bool, openid: str = ""
    ) -> tuple[dict[str, str], bytes]:
        """WeChat's side: the signed query and body of a callback carrying `xml`.

        Used by `wxstream send`, the simulator, tests and benchmarks; `decode` inverts it.
        """
        query = {
            "timestamp": timestamp,
            "nonce": nonce,
            "signature": signature.sign(self.token, timestamp, nonce),
        }
        if openid:
            query["openid"] = openid
        if not encrypted:
            return query, xml.encode("utf-8")
        if self.crypto is None:
            raise ModeError("an account in plain mode has no key to encrypt with")
        encrypt = self.crypto.encrypt(xml.encode("utf-8"))
        query["encrypt_type"] = "aes"
        query["msg_signature"] = signature.sign(self.token, timestamp, nonce, encrypt)
        body = f"<xml><ToUserName>{cdata(self.appid)}</ToUserName><Encrypt>{cdata(encrypt)}</Encrypt></xml>"
        return query, body.encode("utf-8")

    def encode_reply(
        self,
        reply: Reply,
        message: Message,
        *,
        encrypted: bool,
        timestamp: int,
        nonce: str,
    ) -> str:
        """The HTTP body answering `message`: rendered XML, wrapped in the AES envelope if the
        callback came encrypted. An Ack is never encrypted."""
        xml = render(reply, to_user=message.from_user, from_user=message.to_user, create_time=timestamp)
        if isinstance(reply, Ack) or not encrypted:
            return xml
        assert self.crypto is not None
        return self.envelope(xml, timestamp=str(timestamp), nonce=nonce)

    def envelope(self, xml: str, *, timestamp: str, nonce: str) -> str:
        """Encrypt and sign a reply: `<xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml>`."""
        assert self.crypto is not None
        encrypt = self.crypto.encrypt(xml.encode("utf-8"))
        msg_signature = signature.sign(self.token, timestamp, nonce, encrypt)
        return (
            f"<xml><Encrypt>{cdata(encrypt)}</Encrypt><MsgSignature>{cdata(msg_signature)}</MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp><Nonce>{cdata(nonce)}</Nonce></xml>"
        )

    def decode_reply(self, body: str) -> Mapping[str, str]:
        """WeChat's side: the fields of a passive reply, opening the AES envelope if there
        is one (its MsgSignature is verified first). Used by `wxstream send` and the
        simulator."""
        fields = parse_fields(body.encode("utf-8"), max_bytes=self.max_bytes)
        encrypt = fields.get("Encrypt")
        if encrypt is None:
            return fields
        if self.crypto is None:
            raise ModeError("encrypted reply for an account in plain mode")
        signature.verify(fields.get("MsgSignature"), self.token, fields.get("TimeStamp", ""), fields.get("Nonce", ""), encrypt)
        return parse_fields(self.crypto.decrypt(encrypt).message, max_bytes=self.max_bytes)
