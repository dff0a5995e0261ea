"""WeChat's API endpoints that wxstream calls, with WeChat's JSON shapes and errcodes.

Every answer is HTTP 200 with JSON, errors included, as at WeChat. Each endpoint first
waits its injected latency, then answers an injected failure if one is drawn, and only
then applies WeChat's rules; injected transport faults break the exchange around that.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, Awaitable, Callable

from aiohttp import web

from app.simulator import errcodes
from app.simulator.config import SimAccount
from app.simulator.errcodes import error_body
from app.simulator.state import SimState

__all__ = ("STATE", "add_api_routes")

STATE = web.AppKey("simulator_state", SimState)
GRANT_TYPE = "client_credential"
TYPING_COMMANDS = ("Typing", "CancelTyping")

Rule = Callable[[web.Request, SimState], Awaitable[dict[str, Any]]]


def _endpoint(name: str, rule: Rule) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        state = request.app[STATE]
        delay = state.faults.latency(name)
        if delay:
            # WeChat has the whole request before it is slow to answer: a client that
            # gives up meanwhile does not stop the effect (a message still arrives).
            await request.read()
            await asyncio.sleep(delay)
        broken = state.faults.draw_transport(name)
        if broken == "http_502":
            return web.Response(status=502, text="502 Bad Gateway")
        injected = state.faults.draw(name)
        body = error_body(injected) if injected is not None else await rule(request, state)
        state.stats.answered(name, int(body.get("errcode", errcodes.OK)))
        if broken == "not_json":
            return web.Response(text="<html><body>system busy</body></html>", content_type="text/html")
        if broken == "drop":
            assert request.transport is not None
            request.transport.close()  # the effect stays; the answer never leaves
        return web.json_response(body, dumps=lambda data: json.dumps(data, ensure_ascii=False))

    return handler


# A `\uXXXX` escape, not itself escaped (after an even run of backslashes).
_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u([0-9a-fA-F]{4})")


def read_json_as_wechat(raw: bytes) -> Any:
    """`raw` decoded as WeChat decodes it: a `\\uXXXX` escape of a character outside
    ASCII stays those six characters, which the user then sees, so a client that sends
    Chinese text escaped shows up in the simulator's record as it would on a phone."""

    def literal(match: re.Match[str]) -> str:
        backslashes, code = match.groups()
        return match.group(0) if int(code, 16) < 0x80 else f"{backslashes}\\\\u{code}"

    return json.loads(_ESCAPE.sub(literal, raw.decode("utf-8")))


async def _payload(request: web.Request) -> dict[str, Any] | int:
    """The JSON object of the request body, or the errcode WeChat answers instead."""
    raw = await request.read()
    if not raw.strip():
        return errcodes.EMPTY_POST_DATA
    try:
        payload = read_json_as_wechat(raw)
    except (UnicodeDecodeError, ValueError):
        return errcodes.DATA_FORMAT_ERROR
    return payload if isinstance(payload, dict) else errcodes.DATA_FORMAT_ERROR


async def token(request: web.Request, state: SimState) -> dict[str, Any]:
    """GET /cgi-bin/token: a new token on every call."""
    query = request.query
    if query.get("grant_type") != GRANT_TYPE:
        return error_body(errcodes.INVALID_GRANT_TYPE)
    return state.tokens.fetch(query.get("appid", ""), query.get("secret", "")).body()


async def stable_token(request: web.Request, state: SimState) -> dict[str, Any]:
    """POST /cgi-bin/stable_token: the same token while it lives, unless force_refresh."""
    payload = await _payload(request)
    if isinstance(payload, int):
        return error_body(payload)
    if payload.get("grant_type") != GRANT_TYPE:
        return error_body(errcodes.INVALID_GRANT_TYPE)
    force = payload.get("force_refresh", False) is True
    issued = state.tokens.fetch(_text(payload, "appid"), _text(payload, "secret"), stable=True, force_refresh=force)
    return issued.body()


def _text(payload: dict[str, Any], key: str) -> str:
    value = payload.get(key)
    return value if isinstance(value, str) else ""


def _caller(request: web.Request, state: SimState) -> SimAccount | int:
    """The account whose valid token the request carries and may use the API, or the errcode."""
    errcode, account = state.tokens.check(request.query.get("access_token", ""))
    if errcode or account is None:
        return errcode
    return account if account.certified else errcodes.API_UNAUTHORIZED


async def _addressed(request: web.Request, state: SimState):
    """(account, payload, touser) of a message API call, or the errcode that refuses it."""
    account = _caller(request, state)
    if isinstance(account, int):
        return account
    payload = await _payload(request)
    if isinstance(payload, int):
        return payload
    touser = payload.get("touser")
    if not isinstance(touser, str) or not touser:
        return errcodes.INVALID_OPENID
    return account, payload, touser


async def custom_send(request: web.Request, state: SimState) -> dict[str, Any]:
    """POST /cgi-bin/message/custom/send: a text message to a user within the reply window."""
    addressed = await _addressed(request, state)
    if isinstance(addressed, int):
        return error_body(addressed)
    account, payload, touser = addressed
    if payload.get("msgtype") != "text":
        return error_body(errcodes.INVALID_MESSAGE_TYPE)
    text = payload.get("text")
    content = text.get("content") if isinstance(text, dict) else None
    if not isinstance(content, str):
        return error_body(errcodes.DATA_FORMAT_ERROR)
    if len(content.encode("utf-8")) > state.limits.max_content_bytes:
        return error_body(errcodes.CONTENT_TOO_LONG)
    errcode = state.users.may_send(account.name, touser)
    if errcode:
        return error_body(errcode)
    state.users.sent(account.name, touser)
    state.receive(account.name, touser, "api", content)
    return error_body(errcodes.OK)


async def typing(request: web.Request, state: SimState) -> dict[str, Any]:
    """POST /cgi-bin/message/custom/typing: the "typing..." indicator; nothing is recorded."""
    addressed = await _addressed(request, state)
    if isinstance(addressed, int):
        return error_body(addressed)
    account, payload, touser = addressed
    if payload.get("command") not in TYPING_COMMANDS:
        return error_body(errcodes.DATA_FORMAT_ERROR)
    if not state.users.in_window(account.name, touser):
        return error_body(errcodes.REPLY_WINDOW_EXPIRED)
    return error_body(errcodes.OK)


def add_api_routes(app: web.Application) -> None:
    app.router.add_get("/cgi-bin/token", _endpoint("token", token))
    app.router.add_post("/cgi-bin/stable_token", _endpoint("stable_token", stable_token))
    app.router.add_post("/cgi-bin/message/custom/send", _endpoint("custom_send", custom_send))
    app.router.add_post("/cgi-bin/message/custom/typing", _endpoint("typing", typing))
