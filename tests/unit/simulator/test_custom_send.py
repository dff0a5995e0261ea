"""Customer-service messages and the typing indicator: WeChat's rules (size, 48 h window,
5 messages per user message, certification) and what the user is recorded to receive."""

from __future__ import annotations

import pytest

from app.simulator.config import ApiLimits
from tests.unit.simulator.conftest import SAFE, make_state

SEND = "/cgi-bin/message/custom/send"
TYPING = "/cgi-bin/message/custom/typing"
USER = "o_user_1"


@pytest.fixture
async def ready(api):
    """The API, a valid token, and a user who just messaged the account."""
    api.state.users.interacted(SAFE.name, USER)
    return api, await api.token()


async def test_text_message_is_delivered_and_recorded(ready):
    api, token = ready
    assert await api.send(token, USER, "你好 👋") == {"errcode": 0, "errmsg": "ok"}
    [item] = api.state.recorder.received(SAFE.name, USER)
    assert (item.path, item.msg_type, item.text, item.at) == ("api", "text", "你好 👋", api.state.clock.now())
    assert api.state.stats.received["api"] == 1
    assert api.state.stats.api["custom_send 0"] == 1


async def test_text_escaped_outside_ascii_is_shown_as_the_escapes(ready):
    # WeChat does not decode `\u4f60`: the user sees those six characters.
    api, token = ready
    assert (await api.send(token, USER, "你好 a\\u4f60", escaped=True))["errcode"] == 0
    assert (await api.send(token, USER, "你好 a\\u4f60"))["errcode"] == 0
    assert api.state.recorder.texts(SAFE.name, USER) == ["\\u4f60\\u597d a\\u4f60", "你好 a\\u4f60"]


async def test_content_is_limited_to_2048_bytes(ready):
    api, token = ready
    assert (await api.send(token, USER, "a" * 2048))["errcode"] == 0
    assert (await api.send(token, USER, "a" * 2049))["errcode"] == 45002
    assert (await api.send(token, USER, "中" * 683))["errcode"] == 45002  # 2049 bytes in UTF-8
    assert (await api.send(token, USER, "中" * 682))["errcode"] == 0
    assert api.state.recorder.texts(SAFE.name, USER) == ["a" * 2048, "中" * 682]


async def test_user_who_never_wrote_is_out_of_the_window(ready):
    api, token = ready
    assert (await api.send(token, "o_stranger"))["errcode"] == 45015
    assert api.state.recorder.received() == []


async def test_window_closes_48_hours_after_the_users_last_message(ready):
    api, token = ready
    api.state.clock.advance(48 * 3600)
    token = await api.token()  # the old one expired meanwhile
    assert (await api.send(token, USER))["errcode"] == 0
    api.state.clock.advance(1)
    assert (await api.send(token, USER))["errcode"] == 45015
    api.state.users.interacted(SAFE.name, USER)  # the user writes again
    assert (await api.send(token, USER))["errcode"] == 0


async def test_unsubscribed_user_cannot_be_messaged(ready):
    api, token = ready
    api.state.users.interacted(SAFE.name, USER, unsubscribed=True)
    assert (await api.send(token, USER))["errcode"] == 45015


async def test_five_messages_per_user_message(ready):
    api, token = ready
    for n in range(5):
        assert (await api.send(token, USER, f"part {n}"))["errcode"] == 0
    assert (await api.send(token, USER, "one too many"))["errcode"] == 45047
    api.state.users.interacted(SAFE.name, USER)
    assert (await api.send(token, USER, "after the next message"))["errcode"] == 0
    assert len(api.state.recorder.received(SAFE.name, USER)) == 6


async def test_limits_are_configurable(api_factory):
    api = await api_factory(make_state(ApiLimits(replies_per_message=1, max_content_bytes=3, reply_window_s=10)))
    api.state.users.interacted(SAFE.name, USER)
    token = await api.token()
    assert (await api.send(token, USER, "abcd"))["errcode"] == 45002
    assert (await api.send(token, USER, "abc"))["errcode"] == 0
    assert (await api.send(token, USER, "abc"))["errcode"] == 45047


async def test_uncertified_account_has_no_customer_service_api(api_factory):
    api = await api_factory(make_state(uncertified=(SAFE.name,)))
    api.state.users.interacted(SAFE.name, USER)
    token = await api.token()  # tokens still work: other APIs may be allowed
    assert (await api.send(token, USER))["errcode"] == 48001
    typing = await api.call("POST", TYPING, params={"access_token": token}, json={"touser": USER, "command": "Typing"})
    assert typing["errcode"] == 48001
    assert api.state.recorder.received() == []


@pytest.mark.parametrize(
    ("payload", "errcode"),
    [
        ({"touser": "", "msgtype": "text", "text": {"content": "x"}}, 40003),
        ({"msgtype": "text", "text": {"content": "x"}}, 40003),
        ({"touser": USER, "msgtype": "image", "image": {"media_id": "m"}}, 40008),
        ({"touser": USER, "msgtype": "text", "text": "x"}, 47001),
        ({"touser": USER, "msgtype": "text", "text": {}}, 47001),
    ],
)
async def test_malformed_messages(ready, payload, errcode):
    api, token = ready
    assert (await api.call("POST", SEND, params={"access_token": token}, json=payload))["errcode"] == errcode


async def test_bodies_that_are_not_json(ready):
    api, token = ready
    assert (await api.call("POST", SEND, params={"access_token": token}, data=b""))["errcode"] == 44002
    assert (await api.call("POST", SEND, params={"access_token": token}, data=b"\xff\xfe"))["errcode"] == 47001


async def test_token_errors_come_before_anything_else(ready):
    api, _ = ready
    assert (await api.send("bogus", USER, "x" * 5000))["errcode"] == 40001


@pytest.mark.parametrize("command", ["Typing", "CancelTyping"])
async def test_typing_indicator(ready, command):
    api, token = ready
    body = await api.call("POST", TYPING, params={"access_token": token}, json={"touser": USER, "command": command})
    assert body == {"errcode": 0, "errmsg": "ok"}
    assert api.state.recorder.received() == []  # an indicator is not a message


async def test_typing_rules(ready):
    api, token = ready
    call = lambda payload: api.call("POST", TYPING, params={"access_token": token}, json=payload)  # noqa: E731
    assert (await call({"touser": USER, "command": "Dancing"}))["errcode"] == 47001
    assert (await call({"touser": "o_stranger", "command": "Typing"}))["errcode"] == 45015
    assert (await call({"command": "Typing"}))["errcode"] == 40003
    for _ in range(6):  # typing does not count towards the 5 messages
        assert (await call({"touser": USER, "command": "Typing"}))["errcode"] == 0
    assert (await api.send(token, USER))["errcode"] == 0


async def test_errors_are_json_with_http_200(ready):
    api, _ = ready
    response = await api.client.post(SEND, params={"access_token": "bogus"}, json={})
    assert response.content_type == "application/json"
    assert "invalid credential" in await response.text()
