"""The sender and its token cache against the WeChat simulator, in process: tokens
fetched once and renewed on 40001/42001, retries on -1 and failed connections, mailbox on
WeChat's "not now" answers, dead letters for the rest, and for a send that timed out
(it may have arrived)."""

from __future__ import annotations

import asyncio
import socket
from typing import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from app.accounts import Account
from app.clients.policy import RetryPolicy
from app.outbound.api import ApiError, WeChatApi
from app.outbound.metrics import OutboundMetrics
from app.outbound.policy import Action
from app.outbound.sender import Sender
from app.outbound.tokens import TokenCache, TokenRefused
from app.simulator.clock import SimClock
from app.simulator.config import ApiLimits
from app.simulator.server import ApiServer
from app.simulator.state import SimState

SHOP = Account(name="shop", token="t", appid="wxshop", secret="shop-secret")
LOCKED = Account(name="locked", token="t", appid="wxlocked", secret="locked-secret")
UNCERTIFIED = Account(name="free", token="t", appid="wxfree", secret="free-secret", certified=False)
NO_SECRET = Account(name="nosecret", token="t", appid="wxns")
USER = "oUser"


class Harness:
    def __init__(self, state: SimState, url: str) -> None:
        self.state = state
        self.metrics = OutboundMetrics(CollectorRegistry())
        self.api = WeChatApi(url, 2.0, self.metrics)
        self.tokens = TokenCache(self.api)
        self.pauses: list[float] = []

        async def no_sleep(seconds: float) -> None:
            self.pauses.append(seconds)

        self.sender = Sender(self.api, self.tokens, RetryPolicy(3, 0.1, 1.0), sleep=no_sleep, rng=lambda: 1.0)

    def received(self) -> list[str]:
        return self.state.recorder.texts(SHOP.name, USER)


@pytest.fixture
async def sim() -> AsyncIterator[Harness]:
    state = SimState.of((SHOP, LOCKED, UNCERTIFIED, NO_SECRET), limits=ApiLimits(token_lifetime_s=7200), clock=SimClock())
    state.users.interacted(SHOP.name, USER)
    async with ApiServer(state) as server:
        harness = Harness(state, server.url)
        yield harness
        await harness.api.close()


async def test_sends_a_text(sim):
    outcome = await sim.sender.send_text(SHOP, USER, "hello")
    assert outcome.action is Action.SENT
    assert sim.received() == ["hello"]


async def test_chinese_text_arrives_as_written(sim):
    # WeChat shows JSON's \u escapes as they are: the body must be UTF-8.
    assert (await sim.sender.send_text(SHOP, USER, "你好 👋")).action is Action.SENT
    assert sim.received() == ["你好 👋"]


async def test_concurrent_sends_fetch_one_token(sim):
    sim.state.users.interacted(SHOP.name, "other")
    outcomes = await asyncio.gather(*(sim.sender.send_text(SHOP, u, "x") for u in (USER, "other", USER)))
    assert all(o.action is Action.SENT for o in outcomes)
    assert sim.state.stats.api["stable_token 0"] == 1


async def test_an_expired_token_is_renewed_once_and_the_message_sent(sim):
    await sim.sender.send_text(SHOP, USER, "one")
    sim.state.clock.advance(7300)  # the cached token expired at WeChat
    sim.tokens._tokens[SHOP.name] = (sim.tokens._tokens[SHOP.name][0], float("inf"))  # but not in our cache
    outcome = await sim.sender.send_text(SHOP, USER, "two")
    assert outcome.action is Action.SENT and outcome.retries == 0
    assert sim.received() == ["one", "two"]


async def test_invalid_credential_refreshes_then_sends(sim):
    sim.state.faults.enqueue("custom_send", 40001)
    outcome = await sim.sender.send_text(SHOP, USER, "hi")
    assert outcome.action is Action.SENT
    assert sim.received() == ["hi"]


async def test_a_token_rejected_again_is_replaced_for_each_retry(sim):
    sim.state.faults.enqueue("custom_send", 40001, 40001, 40001)
    outcome = await sim.sender.send_text(SHOP, USER, "hi")
    assert outcome.action is Action.SENT and outcome.retries == 2
    # The first token, then per rejection: the stable token again (the same one) and a forced new one.
    assert sim.state.stats.api["stable_token 0"] == 1 + 3 * 2
    assert sim.received() == ["hi"]


async def test_system_busy_is_retried_with_backoff(sim):
    sim.state.faults.enqueue("custom_send", -1, -1)
    outcome = await sim.sender.send_text(SHOP, USER, "hi")
    assert outcome.action is Action.SENT and outcome.retries == 2
    assert sim.pauses == [0.1, 0.2]
    assert sim.received() == ["hi"]


async def test_retries_exhausted_dead_letter(sim):
    sim.state.faults.enqueue("custom_send", -1, -1, -1, -1)
    outcome = await sim.sender.send_text(SHOP, USER, "hi")
    assert outcome.action is Action.DEAD_LETTER and "4 attempts" in outcome.reason
    assert sim.received() == []


@pytest.mark.parametrize("errcode", [45015, 45047, 48001])
async def test_not_now_answers_go_to_the_mailbox(sim, errcode):
    sim.state.faults.enqueue("custom_send", errcode)
    outcome = await sim.sender.send_text(SHOP, USER, "hi")
    assert outcome.action is Action.MAILBOX and str(errcode) in outcome.reason


async def test_outside_the_48h_window_goes_to_the_mailbox(sim):
    outcome = await sim.sender.send_text(SHOP, "never-wrote", "hi")
    assert outcome.action is Action.MAILBOX and "45015" in outcome.reason


@pytest.mark.parametrize("errcode", [45009, 40164])
async def test_hopeless_answers_dead_letter_at_once(sim, errcode):
    sim.state.faults.enqueue("custom_send", errcode)
    outcome = await sim.sender.send_text(SHOP, USER, "hi")
    assert outcome.action is Action.DEAD_LETTER and str(errcode) in outcome.reason and sim.pauses == []


async def test_a_token_refused_for_quota_dead_letters(sim):
    sim.state.faults.enqueue("stable_token", 45009)
    outcome = await sim.sender.send_text(SHOP, USER, "hi")
    assert outcome.action is Action.DEAD_LETTER and "45009" in outcome.reason


async def test_accounts_without_the_api_use_the_mailbox_without_calling(sim):
    for account in (UNCERTIFIED, NO_SECRET):
        outcome = await sim.sender.send_text(account, USER, "hi")
        assert outcome.action is Action.MAILBOX
    assert not sim.state.stats.api


async def test_network_errors_are_retried_then_dead_lettered():
    metrics = OutboundMetrics(CollectorRegistry())
    api = WeChatApi("http://127.0.0.1:9", 0.5, metrics)  # nothing listens on the discard port
    sender = Sender(api, TokenCache(api), RetryPolicy(2, 0.01, 0.01))
    try:
        outcome = await sender.send_text(SHOP, USER, "hi")
    finally:
        await api.close()
    assert outcome.action is Action.DEAD_LETTER and outcome.retries == 2


def _port_that_never_accepts() -> tuple[socket.socket, list[socket.socket]]:
    """A listening socket whose accept queue is full: connecting to it hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    fillers = [socket.socket() for _ in range(3)]
    for filler in fillers:
        filler.setblocking(False)
        filler.connect_ex(server.getsockname())
    return server, fillers


async def test_a_connection_not_made_in_time_is_retried_and_its_error_hides_the_token():
    server, fillers = _port_that_never_accepts()
    metrics = OutboundMetrics(CollectorRegistry())
    api = WeChatApi(f"http://127.0.0.1:{server.getsockname()[1]}", 0.4, metrics)
    try:
        with pytest.raises(ApiError) as raised:
            await api.send_text("SECRET-TOKEN", USER, "hi")
    finally:
        await api.close()
        for sock in (server, *fillers):
            sock.close()
    assert not raised.value.may_have_arrived  # so the sender retries it
    assert "ConnectionTimeoutError" in str(raised.value) and "SECRET-TOKEN" not in str(raised.value)


async def test_a_send_that_times_out_is_not_sent_again(sim):
    api = WeChatApi(sim.api._base, 0.2, sim.metrics)
    sender = Sender(api, TokenCache(api), RetryPolicy(3, 0.01, 0.01))
    sim.state.faults.set("custom_send", latency_s=0.4)  # WeChat delivers, after the client gave up
    try:
        outcome = await sender.send_text(SHOP, USER, "hi")
        await asyncio.sleep(0.4)
    finally:
        await api.close()
    assert outcome.action is Action.DEAD_LETTER and outcome.retries == 0
    assert "may have arrived" in outcome.reason
    assert sim.received() == ["hi"]


@pytest.mark.parametrize("fault, arrived", [("http_502", []), ("not_json", ["hi"]), ("drop", ["hi"])])
async def test_an_answer_that_is_not_wechats_is_not_sent_again(sim, fault, arrived):
    # Whether the message arrived cannot be told from such an answer: never twice.
    await sim.tokens.get(SHOP)
    sim.state.faults.break_transport("custom_send", fault)
    outcome = await sim.sender.send_text(SHOP, USER, "hi")
    assert outcome.action is Action.DEAD_LETTER and outcome.retries == 0
    assert "may have arrived" in outcome.reason
    assert sim.received() == arrived


async def test_token_refused_names_the_account_and_errcode(sim):
    bad = Account(name="bad", token="t", appid="wxbad", secret="nope")
    with pytest.raises(TokenRefused, match="bad: errcode"):
        await sim.tokens.get(bad)


async def test_typing_is_best_effort(sim):
    await sim.sender.typing(SHOP, USER)
    sim.state.faults.enqueue("typing", -1)
    await sim.sender.typing(SHOP, USER)  # no exception
    await sim.sender.typing(UNCERTIFIED, USER)
