"""The `/_sim/` endpoints that tests in other processes use: the record, counters, reset,
the clock, users and faults."""

from __future__ import annotations

import pytest

from tests.unit.simulator.conftest import SAFE

USER = "o_user_1"


async def test_received_over_http_filters_by_account_and_user(api):
    api.state.receive(SAFE.name, USER, "passive", "first", in_reply_to=7)
    api.state.receive(SAFE.name, "o_other", "api", "second")
    api.state.receive("plain", USER, "api", "third")
    body = await api.call("GET", "/_sim/received", params={"account": SAFE.name, "openid": USER})
    assert [(i["text"], i["path"], i["in_reply_to"]) for i in body["received"]] == [("first", "passive", 7)]
    assert len((await api.call("GET", "/_sim/received", params={"account": SAFE.name}))["received"]) == 2
    assert [i["text"] for i in (await api.call("GET", "/_sim/received"))["received"]] == ["first", "second", "third"]


async def test_stats_and_reset(api):
    await api.token()
    api.state.receive(SAFE.name, USER, "passive", "x")
    stats = await api.call("GET", "/_sim/stats")
    assert stats["api"] == {"stable_token 0": 1}
    assert stats["received"] == {"passive": 1}
    assert stats["clock"] == api.state.clock.now()
    assert (await api.call("POST", "/_sim/reset")) == {"ok": True}
    assert (await api.call("GET", "/_sim/received"))["received"] == []
    assert (await api.call("GET", "/_sim/stats"))["api"] == {}


async def test_clock_moves_forward_only(api):
    before = api.state.clock.now()
    body = await api.call("POST", "/_sim/clock", json={"advance_s": 3600})
    assert body["clock"] == before + 3600
    response = await api.client.post("/_sim/clock", json={"advance_s": -1})
    assert response.status == 400


async def test_registered_user_may_be_messaged(api):
    token = await api.token()
    assert (await api.send(token, USER))["errcode"] == 45015
    assert await api.call("POST", "/_sim/users", json={"account": SAFE.name, "openid": USER}) == {"ok": True}
    assert (await api.send(token, USER))["errcode"] == 0
    response = await api.client.post("/_sim/users", json={"account": "nope", "openid": USER})
    assert response.status == 400


async def test_faults_over_http(api):
    api.state.users.interacted(SAFE.name, USER)
    token = await api.token()
    assert await api.call("POST", "/_sim/faults", json={"endpoint": "custom_send", "errcodes": [-1, 45009]}) == {"ok": True}
    assert [(await api.send(token, USER))["errcode"] for _ in range(3)] == [-1, 45009, 0]
    await api.call("POST", "/_sim/faults", json={"endpoint": "custom_send", "probability": 1.0, "errcode": 40164})
    assert (await api.send(token, USER))["errcode"] == 40164
    response = await api.client.delete("/_sim/faults")
    assert response.status == 200
    assert (await api.send(token, USER))["errcode"] == 0
    await api.call("POST", "/_sim/faults", json={"endpoint": "custom_send", "transport": ["http_502"]})
    assert (await api.client.post("/cgi-bin/message/custom/send", params={"access_token": token}, data=b"{}")).status == 502


@pytest.mark.parametrize(
    "payload",
    [
        {"endpoint": "nope", "errcodes": [-1]},
        {"endpoint": "typing", "errcodes": ["-1"]},
        {"endpoint": "typing", "probability": 2},
        {"endpoint": "typing", "latency_s": "slow"},
        {"endpoint": "typing", "transport": ["timeout"]},
        {"endpoint": "typing", "transport": "drop"},
    ],
)
async def test_bad_fault_requests_are_400(api, payload):
    response = await api.client.post("/_sim/faults", json=payload)
    assert response.status == 400
    assert "error" in await response.json()


async def test_non_json_control_body_is_400(api):
    response = await api.client.post("/_sim/clock", data=b"nope")
    assert response.status == 400
