"""`POST /_sim/send`: a user of the simulator writes to an account, and WeChat delivers
the callback to the ingress as it would (5 s per attempt, 3 attempts). What the user got
back is recorded like everything else; the answer says how the callback ended.

This is how `wxstream send`, tests and demos talk to the stack "as a WeChat user": one
place, the simulator, sees both passive replies and customer-service messages.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import aiohttp
from aiohttp import web

from app.simulator.api import STATE
from app.simulator.callbacks import CallbackSender
from app.simulator.messages import MessageFactory
from app.simulator.population import User

__all__ = ("add_chat_routes",)

INGRESS = web.AppKey("ingress_url", str)
FACTORY = web.AppKey("message_factory", MessageFactory)
SESSION = web.AppKey("callback_session", aiohttp.ClientSession)
_seq = itertools.count(1)


async def send(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        payload = await request.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise web.HTTPBadRequest(text='{"error": "body must be a JSON object"}', content_type="application/json")
    account, openid, text = payload.get("account"), payload.get("openid"), payload.get("text")
    if account not in state.accounts or not all(isinstance(v, str) and v for v in (openid, text)):
        known = ", ".join(state.accounts)
        raise web.HTTPBadRequest(text=f'{{"error": "needs account (one of: {known}), openid and text"}}')
    message = request.app[FACTORY].build(next(_seq), state.accounts[account], User(account, openid), "text")
    message = replace(message, text=text, fields={**message.fields, "Content": text})
    outcome = await CallbackSender(state, request.app[SESSION], request.app[INGRESS]).deliver(message)
    body = {
        "result": outcome.result,
        "attempts": outcome.attempts,
        "reply": outcome.reply,
        "msg_id": message.msg_id,
        "error": outcome.error,
    }
    return web.json_response(body, dumps=lambda data: json.dumps(data, ensure_ascii=False))


def add_chat_routes(app: web.Application, ingress_url: str) -> None:
    app[INGRESS] = ingress_url.rstrip("/")
    app[FACTORY] = MessageFactory()

    async def session(app: web.Application):
        app[SESSION] = aiohttp.ClientSession()
        yield
        await app[SESSION].close()

    app.cleanup_ctx.append(session)
    app.router.add_post("/_sim/send", send)
