"""Request handlers of the WeChat callback endpoint."""

from __future__ import annotations

import logging
import time
from typing import Mapping

from aiohttp import web

from app.accounts import Account
from app.ingress.publisher import RawEventPublisher
from app.settings import Settings
from app.topics import RawEvent
from app.wechat import CallbackQuery, Decoded, WeChatError
from app.wechat.errors import SignatureError, TooLargeError
from app.wechat.replies import ACK_BODY
from app.wechat.signature import check_timestamp

log = logging.getLogger("wxstream.ingress")

SETTINGS = web.AppKey("settings", Settings)
ACCOUNTS = web.AppKey("accounts", Mapping[str, Account])
PUBLISHER = web.AppKey("publisher", RawEventPublisher)


def _status(error: WeChatError) -> int:
    if isinstance(error, SignatureError):
        return 403
    if isinstance(error, TooLargeError):
        return 413
    return 400


def _account(request: web.Request) -> Account:
    account = request.app[ACCOUNTS].get(request.match_info["account"])
    if account is None:
        raise web.HTTPNotFound(text="unknown account\n")
    return account


def _rejected(account: Account, error: WeChatError) -> web.Response:
    log.info("rejected callback for %s: %s (%s)", account.name, error.reason, error.message)
    return web.Response(status=_status(error), text=f"{error.reason}\n")


def raw_event(account: Account, decoded: Decoded, received_at: float) -> RawEvent:
    message = decoded.message
    return RawEvent(
        account=account.name,
        openid=message.from_user,
        msg_type=message.msg_type,
        dedupe_key=message.dedupe_key,
        fields=dict(message.raw),
        received_at=received_at,
        encrypted=decoded.encrypted,
    )


async def verify_url(request: web.Request) -> web.Response:
    """GET: WeChat's URL verification; answer `echostr` when the signature is valid."""
    account = _account(request)
    try:
        echostr = account.codec.verify_url(CallbackQuery.from_mapping(request.query))
    except WeChatError as error:
        return _rejected(account, error)
    return web.Response(text=echostr)


async def callback(request: web.Request) -> web.Response:
    """POST: verify, decode, persist to the raw topic, then acknowledge."""
    account = _account(request)
    settings = request.app[SETTINGS]
    body = await request.read()
    now = time.time()
    query = CallbackQuery.from_mapping(request.query)
    try:
        check_timestamp(query.timestamp, now, settings.timestamp_window_s)
        decoded = account.codec.decode(query, body)
    except WeChatError as error:
        return _rejected(account, error)
    try:
        await request.app[PUBLISHER].publish(raw_event(account, decoded, now))
    except Exception as exc:  # broker unreachable or timed out: WeChat will retry
        log.warning("could not persist callback for %s: %s", account.name, exc)
        raise web.HTTPServiceUnavailable(text="broker unavailable\n") from None
    return web.Response(text=ACK_BODY)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})
