"""Fixtures of the simulator tests: accounts in each mode, the API behind aiohttp's test
client, and a scripted stand-in for the ingress that the callback sender talks to."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from app.accounts import Account
from app.outbound.api import json_body
from app.simulator.clock import SimClock
from app.simulator.config import ApiLimits
from app.simulator.server import create_app
from app.simulator.state import SimState
from app.wechat import CallbackQuery
from app.wechat.messages import Message
from app.wechat.replies import ACK_BODY, TextReply

KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
SECRET = "the-app-secret"
SAFE = Account(
    name="shop", token="tok-shop", appid="wxshop", secret=SECRET, mode="safe", aes_keys=(KEY,), original_id="gh_shop"
)
COMPAT = Account(
    name="compat", token="tok-compat", appid="wxcompat", secret="compat-secret", mode="compat", aes_keys=(KEY,)
)
PLAIN = Account(name="plain", token="tok-plain", appid="wxplain", secret="plain-secret")
NOSECRET = Account(name="nosecret", token="tok-ns", appid="wxns")
ACCOUNTS = (SAFE, COMPAT, PLAIN, NOSECRET)


NOON = 1_767_268_800.0  # 2026-01-01 12:00 UTC: the simulated clock of most tests stands still here


def make_state(limits: ApiLimits | None = None, *, uncertified: tuple[str, ...] = ()) -> SimState:
    clock = SimClock(wall=lambda: NOON)
    return SimState.of(ACCOUNTS, uncertified=uncertified, limits=limits or ApiLimits(), clock=clock)


@dataclass
class Api:
    """The simulator's app behind a test client, with its state to inspect and steer."""

    state: SimState
    client: TestClient

    async def call(self, method: str, path: str, **kwargs) -> dict:
        response = await self.client.request(method, path, **kwargs)
        assert response.status == 200, await response.text()
        return await response.json()

    async def token(self, account: Account = SAFE) -> str:
        payload = {"grant_type": "client_credential", "appid": account.appid, "secret": account.secret}
        body = await self.call("POST", "/cgi-bin/stable_token", json=payload)
        return body["access_token"]

    async def send(self, token: str, touser: str, content: str = "hello", *, escaped: bool = False) -> dict:
        """Send as wxstream does (UTF-8 JSON), or `escaped` as most JSON libraries do."""
        payload = {"touser": touser, "msgtype": "text", "text": {"content": content}}
        body = json.dumps(payload).encode() if escaped else json_body(payload)
        return await self.call("POST", "/cgi-bin/message/custom/send", params={"access_token": token}, data=body)


@pytest.fixture
async def api_factory() -> AsyncIterator[Callable[..., Awaitable[Api]]]:
    clients: list[TestClient] = []

    async def start(state: SimState | None = None) -> Api:
        state = state or make_state()
        client = TestClient(TestServer(create_app(state)))
        await client.start_server()
        clients.append(client)
        return Api(state, client)

    yield start
    for client in clients:
        await client.close()


@pytest.fixture
async def api(api_factory) -> Api:
    return await api_factory()


# --- a scripted ingress ------------------------------------------------------------

Behaviour = Callable[[Message], Awaitable[web.Response | str]]


@dataclass
class FakeIngress:
    """Verifies callbacks as the ingress does and answers as `behaviour` says (default:
    a passive reply echoing the user's text)."""

    accounts: dict[str, Account]
    behaviour: Behaviour | None = None
    requests: list[tuple[str, Message]] = field(default_factory=list)  # (account, message)

    async def handle(self, request: web.Request) -> web.Response:
        account = self.accounts[request.match_info["account"]]
        decoded = account.codec.decode(CallbackQuery.from_mapping(request.query), await request.read())
        self.requests.append((account.name, decoded.message))
        answer = await (self.behaviour or echo)(decoded.message)
        if isinstance(answer, web.Response):
            return answer
        if answer == ACK_BODY:
            return web.Response(text=ACK_BODY)
        body = account.codec.encode_reply(
            TextReply(answer),
            decoded.message,
            encrypted=decoded.encrypted,
            timestamp=int(time.time()),
            nonce=secrets.token_hex(4),
        )
        return web.Response(text=body, content_type="text/xml")


async def echo(message: Message) -> str:
    raw = message.raw
    return raw.get("Content") or raw.get("Recognition") or f"{raw.get('MsgType')}:{raw.get('Event', '')}"


@pytest.fixture
async def ingress() -> AsyncIterator[tuple[str, FakeIngress]]:
    """(base URL, FakeIngress) on a free loopback port."""
    fake = FakeIngress({a.name: a for a in ACCOUNTS})
    app = web.Application()
    app.router.add_post("/wechat/{account}", fake.handle)
    server = TestServer(app)
    await server.start_server()
    yield str(server.make_url("")).rstrip("/"), fake
    await server.close()


async def never(message: Message) -> str:
    await asyncio.sleep(3600)
    return ACK_BODY
