"""Request handlers of the WeChat callback endpoint and the ops endpoints."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from enum import Enum
from typing import Mapping

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.accounts import Account
from app.ingress.metrics import IngressMetrics
from app.keywords import expects_answer
from app.ingress.passive import ReplyWaiter
from app.ingress.publisher import Persisted, RawEventPublisher
from app.ingress.rejections import RejectionLog
from app.settings import WECHAT_DEADLINE_S, Settings
from app.topics import Delivery, RawEvent, Reply, reply_id
from app.wechat import CallbackQuery, Decoded, WeChatError
from app.wechat.messages import Message
from app.wechat.errors import SignatureError, TooLargeError
from app.wechat.replies import ACK_BODY, PASSIVE_TEXT_MAX_BYTES, TextReply

log = logging.getLogger("wxstream.ingress")

SETTINGS = web.AppKey("settings", Settings)
ACCOUNTS = web.AppKey("accounts", Mapping[str, Account])
METRICS = web.AppKey("metrics", IngressMetrics)
PUBLISHER = web.AppKey("publisher", RawEventPublisher)
WAITER = web.AppKey("waiter", ReplyWaiter)
REJECTIONS = web.AppKey("rejections", RejectionLog)

# A passive answer must be on its way this long before WeChat's deadline.
ANSWER_MARGIN_S = 0.3
# Pause between tries of a passive claim the broker did not confirm.
CLAIM_RETRY_S = 0.1
XML_TYPES = ("text/xml", "application/xml", "text/plain", "application/octet-stream")


def _status(error: WeChatError) -> int:
    if isinstance(error, SignatureError):
        return 403
    if isinstance(error, TooLargeError):
        return 413
    return 400


def _account(request: web.Request) -> Account:
    name = request.match_info["account"]
    account = request.app[ACCOUNTS].get(name)
    if account is None:
        request.app[METRICS].rejections_of("", "unknown_account").inc()
        request.app[REJECTIONS].rejected(request.method, "", "unknown_account", f"{name!r:.60}")
        raise web.HTTPNotFound(text="unknown account\n")
    return account


def _rejected(request: web.Request, account: Account, reason: str, status: int, detail: str) -> web.Response:
    metrics = request.app[METRICS]
    metrics.rejections_of(account.name, reason).inc()
    metrics.requests_of(account.name, account.mode, "rejected").inc()
    request.app[REJECTIONS].rejected(request.method, account.name, reason, detail)
    return web.Response(status=status, text=f"{reason}\n")


async def wrong_method(request: web.Request) -> web.Response:
    """Any method but GET and POST: 405, counted and logged like every rejection."""
    response = _rejected(request, _account(request), "wrong_method", 405, request.method)
    response.headers["Allow"] = "GET, POST"
    return response


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
        query = CallbackQuery.from_mapping(request.query)
        echostr = account.codec.verify_url(query, now=time.time(), window_s=request.app[SETTINGS].timestamp_window_s)
    except WeChatError as error:
        return _rejected(request, account, error.reason, _status(error), error.message)
    return web.Response(text=echostr)


async def callback(request: web.Request) -> web.Response:
    """POST: verify, decode, persist, then answer with the reply if it is ready in time."""
    started = time.perf_counter()
    account = _account(request)
    app = request.app
    settings = app[SETTINGS]
    if request.content_type not in XML_TYPES:
        return _rejected(request, account, "bad_content_type", 415, request.content_type)
    if (request.content_length or 0) > settings.max_body_bytes:
        return _rejected(request, account, "too_large", 413, f"{request.content_length} bytes")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _rejected(request, account, "too_large", 413, "body over the limit")
    now = time.time()
    query = CallbackQuery.from_mapping(request.query)
    try:
        decoded = account.codec.decode(query, body, now=now, window_s=settings.timestamp_window_s)
    except WeChatError as error:
        return _rejected(request, account, error.reason, _status(error), error.message)

    try:
        persisted = await app[PUBLISHER].publish(raw_event(account, decoded, now))
    except Exception as exc:  # neither broker nor spool: WeChat will retry
        log.error("could not persist callback for %s: %s", account.name, exc)
        app[METRICS].requests_of(account.name, account.mode, "unavailable").inc()
        raise web.HTTPServiceUnavailable(text="unavailable\n") from None
    answer, outcome = ACK_BODY, "accepted"
    message = decoded.message
    window_ends = started + settings.passive_reply_wait_s
    waiter = app[WAITER]
    expects = persisted is Persisted.KAFKA and expects_answer(message.msg_type, message.raw, account.keywords)
    if persisted is Persisted.SPOOL:
        outcome = "spooled"  # the pipeline cannot answer before the spool drains, but a
        # retry may find its reply here: an earlier attempt may have claimed it while the
        # broker failed, and that claim may still land, so only a passive answer is safe.
        reply = await waiter.wait(account.name, message.from_user, message.dedupe_key, 0)
    elif expects:
        reply = await waiter.wait(account.name, message.from_user, message.dedupe_key, window_ends - time.perf_counter())
    else:
        reply = None
    if reply is not None and waiter.left_to_sender(account.name, message.from_user, message.dedupe_key):
        reply, expects = None, False  # an earlier attempt left it to the sender: not twice
    answer_by = started + WECHAT_DEADLINE_S - ANSWER_MARGIN_S
    claim = await _claim_passive(app[PUBLISHER], reply, window_ends, answer_by) if reply is not None else None
    if claim is Claim.CLAIMED:
        answer = _passive_text(account, decoded, reply.text)
        outcome = "replied"
    elif claim is Claim.UNRECORDED:
        # A record may still land and tell the sender the reply went passively: have
        # WeChat try again instead, so that its retry (to any ingress) claims the reply
        # once the broker is back, and answers with it.
        app[METRICS].requests_of(account.name, account.mode, "claim_failed").inc()
        raise web.HTTPServiceUnavailable(text="unavailable\n")
    elif expects and reply is None and not account.certified and now - message.create_time < settings.uncertified_hold_s:
        # No API to deliver it later: let this attempt time out so that WeChat's
        # retry, which reaches any ingress process, can still take the reply.
        await asyncio.sleep(max(0.0, WECHAT_DEADLINE_S + 0.5 - (time.perf_counter() - started)))
        outcome = "held"
    elif expects:
        _defer(app[PUBLISHER], account, message, "not ready in time" if reply is None else "too long to answer passively")
        waiter.leave_to_sender(account.name, message.from_user, message.dedupe_key)
        if not account.certified:  # the reply will wait in the user's mailbox
            answer = _passive_text(account, decoded, settings.mailbox_notice_text)
            outcome = "notice"
    metrics = app[METRICS]
    metrics.requests_of(account.name, account.mode, outcome).inc()
    metrics.latency_of(outcome).observe(time.perf_counter() - started)
    return web.Response(text=answer, content_type="text/xml" if answer != ACK_BODY else "text/plain")


def _passive_text(account: Account, decoded: Decoded, text: str) -> str:
    return account.codec.encode_reply(
        TextReply(text),
        decoded.message,
        encrypted=decoded.encrypted,
        timestamp=int(time.time()),
        nonce=str(secrets.randbelow(10**10)),
    )


def _defer(publisher: RawEventPublisher, account: Account, message: Message, reason: str) -> None:
    """Tell the sender that this reply was not given passively, so it delivers it now.
    Not waited for: without the record the sender delivers after its verdict timeout."""
    publisher.record_delivery_soon(
        Delivery(
            reply_id=reply_id(account.name, message.dedupe_key),
            account=account.name,
            openid=message.from_user,
            path="deferred",
            delivered_at=time.time(),
            reason=reason,
        )
    )


class Claim(Enum):
    CLAIMED = "claimed"  # recorded: answer with the reply
    TOO_LONG = "too_long"  # longer than a passive reply may be: the sender's
    UNRECORDED = "unrecorded"  # the broker did not acknowledge the record in time


async def _claim_passive(publisher: RawEventPublisher, reply: Reply, window_ends: float, answer_by: float) -> Claim:
    """Record the passive delivery before answering with the reply. While the broker does
    not confirm the record, try again until the passive window ends (`perf_counter` time):
    any try may still land, and then only the passive answer gives the user the reply.
    No try runs past `answer_by`, so that the answer beats WeChat's deadline; a try cut
    short may land as well, and counts as unconfirmed."""
    if len(reply.text.encode("utf-8")) > PASSIVE_TEXT_MAX_BYTES:
        return Claim.TOO_LONG
    delivery = Delivery(
        reply_id=reply.reply_id,
        account=reply.account,
        openid=reply.openid,
        path="passive",
        delivered_at=time.time(),
    )
    while True:
        try:
            await asyncio.wait_for(publisher.record_delivery(delivery), answer_by - time.perf_counter())
        except Exception as exc:
            if time.perf_counter() >= min(window_ends, answer_by):
                log.warning("could not record passive delivery of %s: %s", reply.reply_id, exc or type(exc).__name__)
                return Claim.UNRECORDED
            await asyncio.sleep(CLAIM_RETRY_S)
        else:
            return Claim.CLAIMED


async def healthz(request: web.Request) -> web.Response:
    """Alive: the process answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready: the broker takes events, and the spool is not backlogged or damaged."""
    publisher = request.app[PUBLISHER]
    settings = request.app[SETTINGS]
    damage = publisher.spool_damage
    ready = publisher.broker_ok and publisher.spooled <= settings.spool_ready_max and damage is None
    body = {"ready": ready, "broker": publisher.broker_ok, "spooled": publisher.spooled}
    if damage is not None:
        body["spool_damage"] = damage
    return web.json_response(body, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(request.app[METRICS].registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
