"""WeChat's API error codes and the JSON bodies that carry them.

WeChat answers HTTP 200 for errors too, with `{"errcode", "errmsg"}`; its errmsg ends with
a request id (`rid: ...`), so clients must branch on errcode, never on the text.
"""

from __future__ import annotations

import secrets
from typing import Any

__all__ = ("ERRMSG", "error_body", "OK")

SYSTEM_BUSY = -1
OK = 0
INVALID_CREDENTIAL = 40001
INVALID_GRANT_TYPE = 40002
INVALID_OPENID = 40003
INVALID_MESSAGE_TYPE = 40008
INVALID_APPID = 40013
INVALID_APPSECRET = 40125
IP_NOT_WHITELISTED = 40164
ACCESS_TOKEN_MISSING = 41001
APPID_MISSING = 41002
APPSECRET_MISSING = 41004
ACCESS_TOKEN_EXPIRED = 42001
EMPTY_POST_DATA = 44002
CONTENT_TOO_LONG = 45002
DAILY_QUOTA = 45009
REPLY_WINDOW_EXPIRED = 45015
TOO_MANY_REPLIES = 45047
DATA_FORMAT_ERROR = 47001
API_UNAUTHORIZED = 48001

ERRMSG: dict[int, str] = {
    SYSTEM_BUSY: "system error",
    OK: "ok",
    INVALID_CREDENTIAL: "invalid credential, access_token is invalid or not latest",
    INVALID_GRANT_TYPE: "invalid grant_type",
    INVALID_OPENID: "invalid openid",
    INVALID_MESSAGE_TYPE: "invalid message type",
    INVALID_APPID: "invalid appid",
    INVALID_APPSECRET: "invalid appsecret",
    IP_NOT_WHITELISTED: "invalid ip 127.0.0.1 ipv6 ::ffff:127.0.0.1, not in whitelist",
    ACCESS_TOKEN_MISSING: "access_token missing",
    APPID_MISSING: "appid missing",
    APPSECRET_MISSING: "appsecret missing",
    ACCESS_TOKEN_EXPIRED: "access_token expired",
    EMPTY_POST_DATA: "empty post data",
    CONTENT_TOO_LONG: "content size out of limit",
    DAILY_QUOTA: "reach max api daily quota limit",
    REPLY_WINDOW_EXPIRED: "response out of time limit or subscription is canceled",
    TOO_MANY_REPLIES: "out of response count limit",
    DATA_FORMAT_ERROR: "data format error",
    API_UNAUTHORIZED: "api unauthorized",
}


def error_body(errcode: int) -> dict[str, Any]:
    """The JSON WeChat answers with for `errcode` (0: `ok`, no request id)."""
    if errcode == OK:
        return {"errcode": OK, "errmsg": "ok"}
    message = ERRMSG.get(errcode, "simulated error")
    rid = "-".join(secrets.token_hex(4) for _ in range(3))
    return {"errcode": errcode, "errmsg": f"{message} rid: {rid}"}
