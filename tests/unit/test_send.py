"""`wxstream send`: what it says when it cannot do its job."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from app.accounts import Account
from app.embedded.process import free_port
from app.send import Endpoints, SendError, send_text
from app.settings import Settings

ACCOUNT = Account(name="shop", token="shop-token", appid="wxshop0000000001")


async def test_an_unreachable_broker_is_named(tmp_path):
    settings = Settings(data_dir=tmp_path, kafka_url=f"127.0.0.1:{free_port()}")
    with pytest.raises(SendError, match="cannot reach the broker at 127.0.0.1:"):
        await send_text(settings, ACCOUNT, "oUser", "hi", timeout=1)


async def test_a_message_the_simulator_refuses_is_reported_as_refused_not_unreachable(tmp_path, monkeypatch):
    async def received(request: web.Request) -> web.Response:
        return web.json_response({"received": []})

    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=400, text="text must not be empty")

    app = web.Application()
    app.router.add_get("/_sim/received", received)
    app.router.add_post("/_sim/send", refuse)
    async with TestServer(app) as server:
        simulator = str(server.make_url("")).rstrip("/")
        monkeypatch.setattr("app.send.resolve_endpoints", lambda settings: Endpoints("unused:9092", "http://unused", simulator))
        with pytest.raises(SendError, match=r"refused the message \(400\): text must not be empty"):
            await send_text(Settings(data_dir=tmp_path), ACCOUNT, "oUser", "", timeout=1)

