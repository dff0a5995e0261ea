"""Request signatures: `signature` (URL verification, plain mode) and `msg_signature`.

Both are SHA-1 over the sorted, concatenated parts. Comparison is constant time.
"""

from __future__ import annotations

import hashlib
import hmac

from app.wechat.errors import SignatureError, TimestampError

__all__ = ("sign", "verify", "check_timestamp")


def sign(*parts: str) -> str:
    """`sha1("".join(sorted(parts)))` as lowercase hex: token, timestamp, nonce[, encrypt]."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def verify(signature: str | None, *parts: str) -> None:
    """Raise SignatureError unless `signature` signs `parts`."""
    if not signature:
        raise SignatureError("missing signature")
    if not signature.isascii() or not hmac.compare_digest(sign(*parts), signature.lower()):
        raise SignatureError("signature mismatch")


def check_timestamp(timestamp: str | None, now: float, window_s: float) -> int:
    """Parse a request timestamp and reject it when further than `window_s` from `now`.

    WeChat's signature covers the timestamp, so a window turns a captured request into
    one that cannot be replayed later. `window_s <= 0` disables the check.
    """
    if not timestamp or not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureError(f"bad timestamp {timestamp!r:.40}")
    value = int(timestamp)
    if window_s > 0 and abs(now - value) > window_s:
        raise TimestampError(f"timestamp {value} is {now - value:+.0f}s from now (window {window_s:g}s)")
    return value
