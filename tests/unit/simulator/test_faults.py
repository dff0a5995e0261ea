"""Injected failures and latency: a queue of errcodes first, then a probability; injected
failures leave WeChat's state alone."""

from __future__ import annotations

import time

import aiohttp
import pytest

from app.simulator.faults import FaultPlan
from tests.unit.simulator.conftest import SAFE

USER = "o_user_1"


@pytest.fixture
async def ready(api):
    api.state.users.interacted(SAFE.name, USER)
    return api, await api.token()


async def test_queued_errcodes_are_answered_in_order_then_requests_are_served(ready):
    api, token = ready
    api.state.faults.enqueue("custom_send", -1, 40001, 45009, 40164)
    codes = [(await api.send(token, USER, f"m{n}"))["errcode"] for n in range(5)]
    assert codes == [-1, 40001, 45009, 40164, 0]
    assert api.state.recorder.texts(SAFE.name, USER) == ["m4"]  # only the served one arrived
    assert api.state.users.get(SAFE.name, USER).sent_since == 1
    assert api.state.stats.api["custom_send -1"] == 1 and api.state.stats.api["custom_send 0"] == 1


async def test_injected_errors_look_like_wechats(ready):
    api, token = ready
    api.state.faults.enqueue("custom_send", -1, 99999)
    assert (await api.send(token, USER))["errmsg"].startswith("system error rid: ")
    assert (await api.send(token, USER))["errmsg"].startswith("simulated error rid: ")


async def test_faults_are_per_endpoint(ready):
    api, token = ready
    api.state.faults.enqueue("stable_token", 45009)
    assert (await api.send(token, USER))["errcode"] == 0
    body = await api.call(
        "POST", "/cgi-bin/stable_token", json={"grant_type": "client_credential", "appid": SAFE.appid, "secret": SAFE.secret}
    )
    assert body["errcode"] == 45009


async def test_injected_token_failure_does_not_use_the_quota(api):
    fetches = api.state.tokens.fetches_today(SAFE.appid)
    api.state.faults.enqueue("token", -1)
    query = {"grant_type": "client_credential", "appid": SAFE.appid, "secret": SAFE.secret}
    body = await api.call("GET", "/cgi-bin/token", params=query)
    assert body["errcode"] == -1
    assert api.state.tokens.fetches_today(SAFE.appid) == fetches


async def test_probability_is_seeded_and_roughly_right(ready):
    api, token = ready
    api.state.faults = FaultPlan(seed=7)
    api.state.faults.set("typing", probability=0.3, errcode=-1)
    codes = []
    for _ in range(200):
        payload = {"touser": USER, "command": "Typing"}
        body = await api.call("POST", "/cgi-bin/message/custom/typing", params={"access_token": token}, json=payload)
        codes.append(body["errcode"])
    assert set(codes) == {0, -1}
    assert 40 <= codes.count(-1) <= 80
    again = FaultPlan(seed=7)
    again.set("typing", probability=0.3, errcode=-1)
    assert [again.draw("typing") or 0 for _ in range(200)] == codes


async def test_latency_delays_every_answer(ready):
    api, token = ready
    api.state.faults.set("custom_send", latency_s=0.2)
    started = time.perf_counter()
    assert (await api.send(token, USER))["errcode"] == 0
    assert time.perf_counter() - started >= 0.2


async def test_transport_faults_break_the_exchange_around_the_effect(ready):
    api, token = ready
    api.state.faults.break_transport("custom_send", "http_502", "not_json", "drop")
    payload = {"touser": USER, "msgtype": "text", "text": {"content": "m"}}
    params = {"access_token": token}
    statuses = []
    for _ in range(3):
        try:
            async with api.client.post("/cgi-bin/message/custom/send", params=params, json=payload) as response:
                statuses.append((response.status, response.content_type))
        except aiohttp.ClientError as exc:
            statuses.append(type(exc).__name__)
    assert statuses == [(502, "text/plain"), (200, "text/html"), "ServerDisconnectedError"]
    assert api.state.recorder.texts(SAFE.name, USER) == ["m", "m"]  # the gateway's 502 came before any effect
    assert (await api.send(token, USER, "then"))["errcode"] == 0


def test_invalid_settings_are_refused():
    plan = FaultPlan()
    with pytest.raises(ValueError, match="unknown endpoint"):
        plan.enqueue("custom/send", -1)
    with pytest.raises(ValueError):
        plan.set("typing", probability=1.5)
    with pytest.raises(ValueError):
        plan.set("typing", latency_s=-1)
    with pytest.raises(ValueError, match="unknown transport faults"):
        plan.break_transport("typing", "timeout")


def test_clear_forgets_everything():
    plan = FaultPlan()
    plan.enqueue("token", -1)
    plan.set("token", probability=1.0, latency_s=1)
    plan.break_transport("token", "drop")
    plan.clear()
    assert plan.draw("token") is None and plan.latency("token") == 0 and plan.draw_transport("token") is None
