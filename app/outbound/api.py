"""WeChat's API as the sender uses it: access tokens, customer-service text, typing.

WeChat answers HTTP 200 with `{"errcode", "errmsg"}` for errors too, so every call
returns the errcode and raises only when there is no such answer at all. Bodies go as
UTF-8 JSON: WeChat shows a `\\uXXXX` escape to the user as those six characters.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from app.outbound.metrics import OutboundMetrics

__all__ = ("ApiError", "Token", "WeChatApi", "WECHAT_API_URL")

WECHAT_API_URL = "https://api.weixin.qq.com"
JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


class ApiError(RuntimeError):
    """No errcode came back: network error, timeout, an HTTP error or a body that is not
    WeChat's JSON. `may_have_arrived` is true when the request reached WeChat (anything but
    a failed connection) and it had an effect for a user: a timeout may have come after
    WeChat delivered the message, so sending it again could show it twice."""

    def __init__(self, message: str, *, may_have_arrived: bool = False) -> None:
        super().__init__(message)
        self.may_have_arrived = may_have_arrived


@dataclass(frozen=True)
class Token:
    value: str
    expires_in_s: float


class WeChatApi:
    """One HTTP session (connection pool) per process, opened on first use."""

    def __init__(self, base_url: str, timeout_s: float, metrics: OutboundMetrics) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._base = base_url.rstrip("/")
        # A connection not made within half the budget is given up as never sent, and can
        # be retried; a timeout after that may come after WeChat delivered the message.
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, connect=timeout_s / 2)
        self._metrics = metrics

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def stable_token(self, appid: str, secret: str, *, force_refresh: bool = False) -> tuple[int, Token | None]:
        """(0, token) or (errcode, None). The stable token is the same for every caller
        until it expires, so several workers of one account do not revoke each other's."""
        body = await self._call(
            "stable_token",
            "/cgi-bin/stable_token",
            {"grant_type": "client_credential", "appid": appid, "secret": secret, "force_refresh": force_refresh},
        )
        errcode = _errcode(body)
        if errcode:
            return errcode, None
        token, expires_in = body.get("access_token"), body.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(expires_in, (int, float)):
            raise ApiError(f"stable_token answered without a token: {body!r}")
        return 0, Token(token, float(expires_in))

    async def send_text(self, access_token: str, openid: str, content: str) -> int:
        payload = {"touser": openid, "msgtype": "text", "text": {"content": content}}
        return _errcode(await self._call("custom_send", "/cgi-bin/message/custom/send", payload, access_token, delivers=True))

    async def typing(self, access_token: str, openid: str) -> int:
        payload = {"touser": openid, "command": "Typing"}
        return _errcode(await self._call("typing", "/cgi-bin/message/custom/typing", payload, access_token))

    async def _call(
        self, endpoint: str, path: str, payload: dict[str, Any], access_token: str | None = None, *, delivers: bool = False
    ) -> dict:
        """POST to WeChat; `delivers`: the call shows the user something."""
        params = {"access_token": access_token} if access_token is not None else None
        started = time.perf_counter()
        body: object = None
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.post(
                self._base + path, data=json_body(payload), headers=JSON_HEADERS, params=params, timeout=self._timeout
            ) as response:
                if response.status != 200:
                    raise ApiError(f"{endpoint}: HTTP {response.status}", may_have_arrived=delivers)
                body = await response.json(content_type=None)
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:  # never reached WeChat
            raise ApiError(f"{endpoint}: {_described(exc, access_token)}") from None
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ApiError(f"{endpoint}: {_described(exc, access_token)}", may_have_arrived=delivers) from None
        finally:
            errcode = str(body.get("errcode", 0)) if isinstance(body, dict) else "error"
            self._metrics.api_duration.labels(endpoint, errcode).observe(time.perf_counter() - started)
        if not isinstance(body, dict):
            raise ApiError(f"{endpoint}: expected a JSON object, got {body!r:.80}", may_have_arrived=delivers)
        return body


def _described(exc: BaseException, access_token: str | None) -> str:
    """The exception for logs and dead letters; aiohttp puts the URL, access token
    included, in some of its messages."""
    text = f"{type(exc).__name__}: {exc}"
    return text.replace(access_token, "<access_token>") if access_token else text


def json_body(payload: dict[str, Any]) -> bytes:
    """`payload` as WeChat reads it: UTF-8, no `\\u` escapes outside ASCII."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _errcode(body: dict[str, Any]) -> int:
    errcode = body.get("errcode", 0)
    if not isinstance(errcode, int):
        raise ApiError(f"errcode is not a number: {errcode!r}")
    return errcode
