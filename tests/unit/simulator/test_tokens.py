"""Access tokens: both endpoints, WeChat's credential errors, lifetime, the grace period of
a replaced token, stable tokens, and the daily quota."""

from __future__ import annotations

import pytest

from app.simulator.config import ApiLimits
from tests.unit.simulator.conftest import NOSECRET, SAFE, SECRET, make_state

STABLE = "/cgi-bin/stable_token"
TOKEN = "/cgi-bin/token"


def stable_body(appid=SAFE.appid, secret=SECRET, **extra):
    return {"grant_type": "client_credential", "appid": appid, "secret": secret, **extra}


def token_query(appid=SAFE.appid, secret=SECRET):
    return {"grant_type": "client_credential", "appid": appid, "secret": secret}


async def check(api, token: str) -> int:
    """errcode of a typing call with `token` (a cheap authenticated request)."""
    api.state.users.interacted(SAFE.name, "o_user")
    payload = {"touser": "o_user", "command": "Typing"}
    body = await api.call("POST", "/cgi-bin/message/custom/typing", params={"access_token": token}, json=payload)
    return body["errcode"]


async def test_stable_token_has_wechat_shape(api):
    body = await api.call("POST", STABLE, json=stable_body())
    assert set(body) == {"access_token", "expires_in"}
    assert body["expires_in"] == 7200
    assert len(body["access_token"]) > 100
    assert await check(api, body["access_token"]) == 0


async def test_get_token_has_wechat_shape(api):
    body = await api.call("GET", TOKEN, params=token_query())
    assert set(body) == {"access_token", "expires_in"} and body["expires_in"] == 7200
    assert await check(api, body["access_token"]) == 0


@pytest.mark.parametrize(
    ("appid", "secret", "errcode"),
    [
        (SAFE.appid, "wrong", 40125),
        ("wxunknown", SECRET, 40013),
        ("", SECRET, 41002),
        (SAFE.appid, "", 41004),
        (NOSECRET.appid, "anything", 40125),  # an account without a secret cannot fetch tokens
        (SAFE.appid, "密钥", 40125),
    ],
)
@pytest.mark.parametrize("endpoint", ["stable", "get"])
async def test_credential_errors(api, endpoint, appid, secret, errcode):
    if endpoint == "stable":
        body = await api.call("POST", STABLE, json=stable_body(appid, secret))
    else:
        body = await api.call("GET", TOKEN, params=token_query(appid, secret))
    assert body["errcode"] == errcode
    assert "access_token" not in body
    assert "rid: " in body["errmsg"]


async def test_wrong_grant_type_is_40002(api):
    assert (await api.call("GET", TOKEN, params={**token_query(), "grant_type": "password"}))["errcode"] == 40002
    assert (await api.call("POST", STABLE, json=stable_body(grant_type="x")))["errcode"] == 40002


async def test_stable_token_bodies_that_are_not_json_objects(api):
    assert (await api.call("POST", STABLE, data=b""))["errcode"] == 44002
    assert (await api.call("POST", STABLE, data=b"{nope"))["errcode"] == 47001
    assert (await api.call("POST", STABLE, data=b"[1]"))["errcode"] == 47001


async def test_unknown_token_is_40001_and_missing_is_41001(api):
    assert await check(api, "not-a-token") == 40001
    payload = {"touser": "o", "msgtype": "text", "text": {"content": "x"}}
    body = await api.call("POST", "/cgi-bin/message/custom/send", json=payload)
    assert body["errcode"] == 41001


async def test_token_expires_after_its_lifetime(api_factory):
    api = await api_factory(make_state(ApiLimits(token_lifetime_s=60)))
    token = await api.token()
    assert (await api.call("POST", STABLE, json=stable_body()))["expires_in"] == 60
    api.state.clock.advance(59)
    assert await check(api, token) == 0
    api.state.clock.advance(1)
    assert await check(api, token) == 42001


async def test_stable_token_is_reused_while_it_lives(api):
    first = await api.call("POST", STABLE, json=stable_body())
    api.state.clock.advance(1000)
    second = await api.call("POST", STABLE, json=stable_body())
    assert second["access_token"] == first["access_token"]
    assert second["expires_in"] == 6200
    api.state.clock.advance(6200)
    third = await api.call("POST", STABLE, json=stable_body())
    assert third["access_token"] != first["access_token"] and third["expires_in"] == 7200


async def test_force_refresh_replaces_the_stable_token_at_once(api):
    old = await api.token()
    new = (await api.call("POST", STABLE, json=stable_body(force_refresh=True)))["access_token"]
    assert new != old
    assert await check(api, old) == 40001
    assert await check(api, new) == 0


async def test_get_token_replaces_the_previous_one_after_a_grace_period(api):
    old = (await api.call("GET", TOKEN, params=token_query()))["access_token"]
    new = (await api.call("GET", TOKEN, params=token_query()))["access_token"]
    assert new != old
    api.state.clock.advance(299)
    assert await check(api, old) == 0
    api.state.clock.advance(1)
    assert await check(api, old) == 40001
    assert await check(api, new) == 0


async def test_stable_and_ordinary_tokens_do_not_replace_each_other(api):
    stable = await api.token()
    await api.call("GET", TOKEN, params=token_query())
    api.state.clock.advance(301)
    assert await check(api, stable) == 0


async def test_daily_quota_counts_every_fetch_and_resets_the_next_day(api_factory):
    api = await api_factory(make_state(ApiLimits(daily_token_quota=3)))
    for _ in range(2):
        assert "access_token" in await api.call("POST", STABLE, json=stable_body())
    assert "access_token" in await api.call("GET", TOKEN, params=token_query())
    assert (await api.call("POST", STABLE, json=stable_body()))["errcode"] == 45009
    assert (await api.call("GET", TOKEN, params=token_query()))["errcode"] == 45009
    assert api.state.tokens.fetches_today(SAFE.appid) == 3
    api.state.clock.advance(86400)
    assert "access_token" in await api.call("POST", STABLE, json=stable_body())


async def test_wrong_secrets_do_not_use_the_quota(api_factory):
    api = await api_factory(make_state(ApiLimits(daily_token_quota=1)))
    await api.call("POST", STABLE, json=stable_body(secret="wrong"))
    assert "access_token" in await api.call("POST", STABLE, json=stable_body())
