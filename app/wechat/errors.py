"""The one error hierarchy of the protocol core.

Every input, however hostile, yields either a result or one of these. Codes follow
Tencent's WXBizMsgCrypt samples so that logs line up with WeChat's documentation; the
ingress maps each class to an HTTP status.
"""

from __future__ import annotations

__all__ = (
    "WeChatError",
    "SignatureError",
    "TimestampError",
    "AESKeyError",
    "CipherError",
    "AppIdError",
    "XMLError",
    "TooLargeError",
    "ModeError",
)


class WeChatError(Exception):
    """Base of every protocol error; `reason` is a short stable tag for metrics."""

    errcode = -40000
    reason = "protocol"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SignatureError(WeChatError):
    """Missing or forged `signature` / `msg_signature`."""

    errcode = -40001
    reason = "bad_signature"


class TimestampError(SignatureError):
    """A correctly signed request whose timestamp is outside the accepted window (replay)."""

    reason = "stale_timestamp"


class XMLError(WeChatError):
    """Body is not well-formed, not WeChat's flat `<xml>`, or uses forbidden constructs."""

    errcode = -40002
    reason = "bad_xml"


class TooLargeError(XMLError):
    """Body or nesting exceeds the configured limits."""

    reason = "too_large"


class AESKeyError(WeChatError):
    """An EncodingAESKey that is not 43 characters of base64 for 32 bytes (configuration)."""

    errcode = -40004
    reason = "bad_aes_key"


class AppIdError(WeChatError):
    """The decrypted payload is addressed to another appid."""

    errcode = -40005
    reason = "wrong_appid"


class CipherError(WeChatError):
    """Ciphertext that is not valid base64/AES-CBC/PKCS#7 under any configured key."""

    errcode = -40007
    reason = "bad_ciphertext"


class ModeError(WeChatError):
    """The request's shape does not match the account's mode (e.g. plain POST to a safe account)."""

    errcode = -40008
    reason = "wrong_mode"
