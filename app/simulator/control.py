"""The simulator's own endpoints under `/_sim/`: what users received, counters, and the
knobs a test in another process turns (clock, users, faults, reset)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from app.simulator.api import STATE
from app.simulator.state import SimState

__all__ = ("add_control_routes",)


def _state(request: web.Request) -> SimState:
    return request.app[STATE]


def _bad(reason: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": reason}), content_type="application/json")


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        payload = json.loads(await request.read() or b"{}")
    except ValueError:
        raise _bad("body must be JSON") from None
    if not isinstance(payload, dict):
        raise _bad("body must be a JSON object")
    return payload


async def received(request: web.Request) -> web.Response:
    """GET /_sim/received?account=&openid=: what users received, in arrival order."""
    items = _state(request).recorder.received(request.query.get("account"), request.query.get("openid"))
    return web.json_response({"received": [item.to_json() for item in items]})


async def stats(request: web.Request) -> web.Response:
    state = _state(request)
    body = {**state.stats.to_json(), "users": len(state.users), "clock": state.clock.now()}
    return web.json_response(body)


async def reset(request: web.Request) -> web.Response:
    """POST /_sim/reset: forget what was received and counted."""
    _state(request).reset()
    return web.json_response({"ok": True})


async def advance_clock(request: web.Request) -> web.Response:
    """POST /_sim/clock {"advance_s": N}: jump the simulated clock forward."""
    seconds = (await _json(request)).get("advance_s")
    if not isinstance(seconds, (int, float)) or seconds < 0:
        raise _bad("advance_s must be a number >= 0")
    return web.json_response({"clock": _state(request).clock.advance(seconds)})


async def register_user(request: web.Request) -> web.Response:
    """POST /_sim/users {"account", "openid"}: the user just messaged the account."""
    payload = await _json(request)
    state = _state(request)
    account, openid = payload.get("account"), payload.get("openid")
    if account not in state.accounts or not isinstance(openid, str) or not openid:
        raise _bad(f"needs an openid and an account, one of: {', '.join(state.accounts)}")
    state.users.interacted(account, openid)
    return web.json_response({"ok": True})


async def set_faults(request: web.Request) -> web.Response:
    """POST /_sim/faults {"endpoint", "errcodes"?, "probability"?, "errcode"?, "latency_s"?,
    "transport"? (a list of http_502, not_json, drop)}."""
    payload = await _json(request)
    faults = _state(request).faults
    endpoint = payload.get("endpoint", "")
    queued = payload.get("errcodes", [])
    broken = payload.get("transport", [])
    try:
        if not isinstance(queued, list) or not all(type(code) is int for code in queued):
            raise ValueError("errcodes must be a list of integers")
        if not isinstance(broken, list) or not all(isinstance(kind, str) for kind in broken):
            raise ValueError("transport must be a list of fault names")
        faults.set(
            endpoint,
            probability=payload.get("probability"),
            errcode=payload.get("errcode"),
            latency_s=payload.get("latency_s"),
        )
        faults.enqueue(endpoint, *queued)
        faults.break_transport(endpoint, *broken)
    except (ValueError, TypeError) as exc:
        raise _bad(str(exc)) from None
    return web.json_response({"ok": True})


async def clear_faults(request: web.Request) -> web.Response:
    _state(request).faults.clear()
    return web.json_response({"ok": True})


def add_control_routes(app: web.Application) -> None:
    app.router.add_get("/_sim/received", received)
    app.router.add_get("/_sim/stats", stats)
    app.router.add_post("/_sim/reset", reset)
    app.router.add_post("/_sim/clock", advance_clock)
    app.router.add_post("/_sim/users", register_user)
    app.router.add_post("/_sim/faults", set_faults)
    app.router.add_delete("/_sim/faults", clear_faults)
