"""`wxstream decode`: why was this callback rejected? Same code path as the ingress.

Prints the decoded message as one JSON object (its XML fields by their WeChat names,
plus `dedupe_key`) and returns 0, or prints the exact reason for rejection and returns 1.
"""

from __future__ import annotations

import json
import sys
import time
from typing import IO
from urllib.parse import parse_qsl

from app.wechat import CallbackCodec, CallbackQuery, WeChatError

__all__ = ("decode_callback",)


def decode_callback(
    *,
    token: str,
    appid: str,
    aes_keys: list[str],
    query: str,
    body: bytes,
    window_s: float,
    out: IO[str] = sys.stdout,
    err: IO[str] = sys.stderr,
) -> int:
    params = CallbackQuery.from_mapping(dict(parse_qsl(query.lstrip("?"), keep_blank_values=True)))
    try:
        # compat accepts both plain and encrypted callbacks: the query says which this is.
        codec = CallbackCodec(token=token, appid=appid, mode="compat" if aes_keys else "plain", aes_keys=aes_keys)
        decoded = codec.decode(params, body, now=time.time() if window_s > 0 else None, window_s=window_s)
    except WeChatError as error:
        print(f"rejected: {error.reason} (errcode {error.errcode}): {error.message}", file=err)
        return 1
    document = dict(decoded.message.raw)
    document["dedupe_key"] = decoded.message.dedupe_key
    if decoded.key_index:
        print(f"note: opened with previous key #{decoded.key_index}", file=err)
    print(json.dumps(document, ensure_ascii=False), file=out)
    return 0
