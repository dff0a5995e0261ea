"""The ingress against the real embedded broker: every mode, every rejection, the spool,
passive replies and the ops endpoints."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import sys
import time
from dataclasses import replace
from io import StringIO
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest

from app.accounts import Account, load_accounts
from app.embedded.broker import start_broker
from app.embedded.process import ManagedProcess, free_port, http_ready
from app.ingress.salvage import run_salvage
from app.topics import RAW_EVENTS
from app.wechat.xmlparse import render_fields
from tests.integration.stack_helpers import isolated_settings, running_stack
from tests.integration.kafka_helpers import read_topic

pytestmark = pytest.mark.integration

OLD_KEY = base64.b64encode(b"o" * 32).decode().rstrip("=")
NEW_KEY = base64.b64encode(b"n" * 32).decode().rstrip("=")
ACCOUNTS_TOML = f"""
[accounts.plain]
token = "plain-token"
appid = "wxplain0000000001"
mode = "plain"

[accounts.compat]
token = "compat-token"
appid = "wxcompat000000001"
aes_keys = ["{NEW_KEY}"]
mode = "compat"

[accounts.safe]
token = "safe-token"
appid = "wxsafe00000000001"
aes_keys = ["{NEW_KEY}", "{OLD_KEY}"]
mode = "safe"

[accounts.old]   # the safe account as it was before the key rotation
token = "safe-token"
appid = "wxsafe00000000001"
aes_keys = ["{OLD_KEY}"]
mode = "safe"
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("ingress")
    (root / "accounts.toml").write_text(ACCOUNTS_TOML)
    with running_stack(isolated_settings(root / "data", accounts=root / "accounts.toml")) as stack:
        yield stack


@pytest.fixture(scope="module")
def accounts(stack) -> dict[str, Account]:
    return dict(load_accounts(stack.child_settings))


_msg_ids = iter(range(int(time.time() * 1000), 1 << 62))


def text_xml(openid: str, text: str, msg_id: int | None = None) -> str:
    return render_fields(
        {
            "ToUserName": "gh_test",
            "FromUserName": openid,
            "CreateTime": str(int(time.time())),
            "MsgType": "text",
            "Content": text,
            "MsgId": str(msg_id or next(_msg_ids)),
        }
    )


def callback(account: Account, xml: str, *, encrypted: bool, timestamp: int | None = None):
    return account.codec.encode_callback(
        xml, timestamp=str(timestamp or int(time.time())), nonce="12345", encrypted=encrypted
    )


async def post(stack, path: str, query: dict[str, str], body: bytes, **kwargs) -> tuple[int, str]:
    headers = kwargs.pop("headers", {"Content-Type": "text/xml"})
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{stack.child_settings.ingress_url}{path}", params=query, data=body, headers=headers, **kwargs
        ) as response:
            return response.status, await response.text()


@pytest.mark.parametrize(
    ("name", "encrypted"), [("plain", False), ("compat", False), ("compat", True), ("safe", True)]
)
async def test_each_mode_accepts_a_valid_callback_and_answers_with_the_reply(stack, accounts, name, encrypted):
    account = accounts[name]
    status, body = await post(stack, f"/wechat/{name}", *callback(account, text_xml("o_mode", "ping"), encrypted=encrypted))
    assert status == 200
    reply = account.codec.decode_reply(body)
    assert reply["Content"] == "ping"
    assert ("<Encrypt>" in body) is encrypted


async def test_message_encrypted_with_the_previous_key_is_accepted_during_rotation(stack, accounts):
    query, body = callback(accounts["old"], text_xml("o_rotation", "old key"), encrypted=True)
    status, answer = await post(stack, "/wechat/safe", query, body)
    assert status == 200
    assert accounts["safe"].codec.decode_reply(answer)["Content"] == "old key"


@pytest.mark.parametrize(
    ("mutate", "status", "reason"),
    [
        (lambda q, b: ({**q, "msg_signature": "0" * 40}, b), 403, "bad_signature"),
        (lambda q, b: ({k: v for k, v in q.items() if k != "msg_signature"}, b), 403, "bad_signature"),
        (lambda q, b: ({k: v for k, v in q.items() if k not in ("encrypt_type", "msg_signature")}, b), 400, "wrong_mode"),
        (lambda q, b: (q, b"<xml><Encrypt>bm90IGFlcw==</Encrypt></xml>"), 403, "bad_signature"),
        (lambda q, b: (q, b"<xml><unclosed>"), 400, "bad_xml"),
        (lambda q, b: (q, b"<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><xml>&e;</xml>"), 400, "bad_xml"),
        (lambda q, b: (q, b"<xml>" + b"x" * 70_000 + b"</xml>"), 413, "too_large"),
    ],
    ids=["forged", "unsigned", "plain-to-safe", "wrong-ciphertext", "malformed", "xxe", "huge"],
)
async def test_bad_callbacks_are_rejected_with_a_clear_status(stack, accounts, mutate, status, reason):
    query, body = mutate(*callback(accounts["safe"], text_xml("o_bad", "x"), encrypted=True))
    got_status, text = await post(stack, "/wechat/safe", query, body)
    assert (got_status, text.strip()) == (status, reason)


async def test_replayed_request_outside_the_timestamp_window_is_rejected(stack, accounts):
    stale = int(time.time()) - 3600
    status, text = await post(stack, "/wechat/plain", *callback(accounts["plain"], text_xml("o_r", "x"), encrypted=False, timestamp=stale))
    assert (status, text.strip()) == (403, "stale_timestamp")


async def test_a_chunked_body_one_byte_over_the_limit_is_rejected(stack, accounts):
    query, _ = callback(accounts["plain"], text_xml("o_chunked", "x"), encrypted=False)
    body = b"<xml>" + b"x" * (stack.child_settings.max_body_bytes - 10) + b"</xml>"
    assert len(body) == stack.child_settings.max_body_bytes + 1

    async def chunked():  # no Content-Length: the limit is met while reading
        yield body[:1000]
        yield body[1000:]

    assert await post(stack, "/wechat/plain", query, chunked()) == (413, "too_large\n")


async def test_unknown_account_wrong_method_and_content_type(stack, accounts):
    query, body = callback(accounts["plain"], text_xml("o_x", "x"), encrypted=False)
    assert (await post(stack, "/wechat/nobody", query, body))[0] == 404
    assert (await post(stack, "/wechat/plain", query, b"{}", headers={"Content-Type": "application/json"}))[0] == 415
    async with aiohttp.ClientSession() as session:
        async with session.put(f"{stack.child_settings.ingress_url}/wechat/plain", data=body) as response:
            assert (response.status, response.headers["Allow"]) == (405, "GET, POST")
        async with session.get(f"{stack.child_settings.ingress_url}/metrics") as response:
            assert 'wxstream_ingress_rejections_total{account="plain",reason="wrong_method"} 1.0' in await response.text()


async def test_url_verification_answers_echostr_only_when_signed(stack, accounts):
    query, _ = callback(accounts["plain"], "", encrypted=False)
    url = f"{stack.child_settings.ingress_url}/wechat/plain"
    async with aiohttp.ClientSession() as session:
        async with session.get(url, params={**query, "echostr": "4375120948345356249"}) as response:
            assert (response.status, await response.text()) == (200, "4375120948345356249")
        async with session.get(url, params={**query, "signature": "f" * 40, "echostr": "1"}) as response:
            assert response.status == 403
    stale, _ = callback(accounts["plain"], "", encrypted=False, timestamp=int(time.time()) - 3600)
    async with aiohttp.ClientSession() as session:
        async with session.get(url, params={**stale, "echostr": "1"}) as response:
            assert (response.status, await response.text()) == (403, "stale_timestamp\n")


async def test_ops_endpoints(stack, accounts):
    base = stack.child_settings.ingress_url
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/healthz") as response:
            assert response.status == 200
        async with session.get(f"{base}/readyz") as response:
            assert response.status == 200
            assert (await response.json())["ready"] is True
        async with session.get(f"{base}/metrics") as response:
            text = await response.text()
    assert 'wxstream_ingress_requests_total{account="plain",mode="plain",outcome="replied"}' in text
    assert 'wxstream_ingress_rejections_total{account="safe",reason="bad_signature"}' in text
    assert "wxstream_ingress_request_duration_seconds_bucket" in text
    assert "wxstream_ingress_spool_depth 0.0" in text
    assert "wxstream_ingress_spool_oldest_age_seconds 0.0" in text


async def test_slow_reply_gets_success_and_leaves_delivery_to_the_outbound_path(start_stack, demo_account):
    stack = start_stack(passive_reply_wait_s=0.0)
    status, body = await post(stack, f"/wechat/{demo_account.name}", *callback(demo_account, text_xml("o_slow", "hi"), encrypted=True))
    assert (status, body) == (200, "success")


async def test_broker_down_spools_then_drains_every_event_in_order(start_stack, demo_account):
    """Freeze the broker, keep accepting within WeChat's deadline, thaw it: every accepted
    event reaches Kafka, each user's in order, and the clean topic holds each exactly once."""
    stack = start_stack()
    settings = stack.child_settings
    broker = stack.component("broker")
    users = ["o_spool_a", "o_spool_b"]
    sent: dict[str, list[str]] = {user: [] for user in users}
    os.kill(broker.pid, signal.SIGSTOP)
    try:
        for i in range(12):
            user = users[i % 2]
            msg_id = next(_msg_ids)
            started = time.monotonic()
            status, body = await post(stack, f"/wechat/{demo_account.name}", *callback(demo_account, text_xml(user, f"m{i}", msg_id), encrypted=True))
            assert (status, body) == (200, "success")
            assert time.monotonic() - started < 4.5, "answered within WeChat's deadline"
            sent[user].append(f"msg:{msg_id}")
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{settings.ingress_url}/readyz") as response:
                assert response.status == 503
                assert (await response.json())["spooled"] >= 11
    finally:
        os.kill(broker.pid, signal.SIGCONT)

    wanted = {key for keys in sent.values() for key in keys}
    raw = await read_topic(settings.kafka_url, RAW_EVENTS.name, lambda r: wanted <= {json.loads(x.value)["dedupe_key"] for x in r})
    for user, keys in sent.items():
        seen_order = []
        for record in raw:
            event = json.loads(record.value)
            if event["openid"] == user and event["dedupe_key"] not in seen_order:
                seen_order.append(event["dedupe_key"])
        assert seen_order == keys, f"{user}'s events out of order"
    from app.topics import CLEAN_EVENTS

    clean = await read_topic(settings.kafka_url, CLEAN_EVENTS.name, lambda r: wanted <= {json.loads(x.value)["dedupe_key"] for x in r})
    keys = [json.loads(x.value)["dedupe_key"] for x in clean if json.loads(x.value)["dedupe_key"] in wanted]
    assert sorted(keys) == sorted(wanted), "each accepted event exactly once on the clean topic"


async def test_an_ingress_started_while_the_broker_is_away_takes_callbacks_and_drains_them_later(tmp_path):
    port = free_port()
    settings = replace(
        isolated_settings(tmp_path / "data", kafka_url=f"127.0.0.1:{port}", kafka_one_record_batches=True),
        ingress_port=free_port(),
    )
    account = load_accounts(settings)["demo"]  # creates the demo accounts file the ingress reads
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("WXSTREAM_")}, **settings.to_env()}
    ingress = ManagedProcess("ingress", [sys.executable, "-m", "app", "ingress"], tmp_path / "ingress.log", env=env)
    broker = None
    try:
        ingress.start().wait_ready(http_ready(f"{settings.ingress_url}/healthz"), timeout=30)
        here = SimpleNamespace(child_settings=settings)
        keys = []
        for i in range(3):
            msg_id = next(_msg_ids)
            status, body = await post(here, "/wechat/demo", *callback(account, text_xml("o_early", f"m{i}", msg_id), encrypted=True))
            assert (status, body) == (200, "success")
            keys.append(f"msg:{msg_id}")
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{settings.ingress_url}/readyz") as response:
                assert (response.status, (await response.json())["spooled"]) == (503, 3)

        broker, _ = start_broker(tmp_path, port=port)
        await asyncio.to_thread(ingress.wait_ready, http_ready(f"{settings.ingress_url}/readyz"), 60)  # drained
        raw = await read_topic(settings.kafka_url, RAW_EVENTS.name, lambda r: len(r) >= 3, timeout=60)
        assert [json.loads(record.value)["dedupe_key"] for record in raw] == keys, "each once, in order"
    finally:
        ingress.stop()
        if broker is not None:
            broker.stop()


async def _spool_damaged(settings) -> float:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{settings.ingress_url}/metrics") as response:
            text = await response.text()
    return next(float(line.split()[1]) for line in text.splitlines() if line.startswith("wxstream_ingress_spool_damaged "))


async def test_a_damaged_spool_is_set_aside_at_start_up_and_salvaged_to_the_raw_topic(tmp_path):
    port = free_port()
    settings = replace(
        isolated_settings(tmp_path / "data", kafka_url=f"127.0.0.1:{port}", kafka_one_record_batches=True),
        ingress_port=free_port(),
    )
    account = load_accounts(settings)["demo"]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("WXSTREAM_")}, **settings.to_env()}
    ingress = ManagedProcess("ingress", [sys.executable, "-m", "app", "ingress"], tmp_path / "ingress.log", env=env)
    here = SimpleNamespace(child_settings=settings)
    broker = None
    try:
        ingress.start().wait_ready(http_ready(f"{settings.ingress_url}/healthz"), timeout=30)
        keys = []
        for i in range(3):  # no broker yet: spooled
            msg_id = next(_msg_ids)
            status, _ = await post(here, "/wechat/demo", *callback(account, text_xml("o_damaged", f"m{i}", msg_id), encrypted=True))
            assert status == 200
            keys.append(f"msg:{msg_id}")
        ingress.stop()
        (segment,) = (settings.data_dir / "spool" / "ingress-0").glob("spool-*.log")
        data = bytearray(segment.read_bytes())
        data[len(data) // 2] ^= 0xFF  # inside the second of three records of about equal size
        segment.write_bytes(bytes(data))

        broker, _ = start_broker(tmp_path, port=port)
        ingress.start().wait_ready(http_ready(f"{settings.ingress_url}/readyz"), timeout=60)
        assert await _spool_damaged(settings) == 1
        assert "set aside" in (tmp_path / "ingress.log").read_text()
        msg_id = next(_msg_ids)  # the new spool and the broker take callbacks at once
        status, _ = await post(here, "/wechat/demo", *callback(account, text_xml("o_damaged", "after", msg_id), encrypted=True))
        assert status == 200
        out = StringIO()
        code = await asyncio.to_thread(run_salvage, settings, SimpleNamespace(directories=[], dry_run=False), out, StringIO())
        assert code == 0, out.getvalue()
        assert "2 of 2 written" in out.getvalue() and "damaged bytes" in out.getvalue()
        assert await _spool_damaged(settings) == 0
        wanted = {keys[0], keys[2], f"msg:{msg_id}"}
        raw = await read_topic(settings.kafka_url, RAW_EVENTS.name, lambda r: wanted <= {json.loads(x.value)["dedupe_key"] for x in r})
        assert keys[1] not in {json.loads(record.value)["dedupe_key"] for record in raw}, "the damaged record is lost"
    finally:
        ingress.stop()
        if broker is not None:
            broker.stop()
