"""The callback handler's passive reply: answered only once its delivery record is in the
broker; when the record cannot be confirmed, WeChat is asked to try again (503) rather
than told `success`, since a record that lands late would tell the sender the reply went
passively. A reply not ready in time is handed over to the sender without waiting."""

from __future__ import annotations

import time

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from app.accounts import Account
from app.ingress import handlers
from app.ingress.metrics import IngressMetrics
from app.ingress.publisher import Persisted
from app.send import text_callback_xml
from app.settings import Settings
from app.topics import Reply, reply_id

ACCOUNT = Account(name="shop", token="shop-token", appid="wxshop0000000001")


class Publisher:
    def __init__(self, fail_records: bool) -> None:
        self.fail_records = fail_records
        self.records: list = []

    async def publish(self, raw) -> Persisted:
        return Persisted.KAFKA

    async def record_delivery(self, delivery) -> None:
        if self.fail_records:
            raise TimeoutError("no acknowledgement")
        self.records.append(delivery)

    def record_delivery_soon(self, delivery) -> None:
        self.records.append(delivery)


class Waiter:
    def __init__(self, ready: bool = True) -> None:
        self.ready = ready

    async def wait(self, account: str, in_reply_to: str, timeout: float) -> Reply | None:
        if not self.ready:
            return None
        return Reply(
            reply_id=reply_id(account, in_reply_to),
            account=account,
            openid="oUser",
            in_reply_to=in_reply_to,
            text="the answer",
            model="echo",
            created_at=time.time(),
        )


async def post(publisher: Publisher, waiter: Waiter | None = None):
    app = web.Application()
    app[handlers.SETTINGS] = Settings.from_env({})
    app[handlers.ACCOUNTS] = {ACCOUNT.name: ACCOUNT}
    app[handlers.METRICS] = IngressMetrics()
    app[handlers.PUBLISHER] = publisher
    app[handlers.WAITER] = waiter or Waiter()
    app.router.add_post("/wechat/{account}", handlers.callback)
    now = int(time.time())
    xml = text_callback_xml(ACCOUNT, "oUser", "hi", msg_id=42, create_time=now)
    query, body = ACCOUNT.codec.encode_callback(xml, timestamp=str(now), nonce="1", encrypted=False, openid="oUser")
    async with TestClient(TestServer(app)) as client:
        response = await client.post("/wechat/shop", params=query, data=body, headers={"Content-Type": "text/xml"})
        return response.status, await response.text()


async def test_the_reply_goes_back_once_its_delivery_is_recorded():
    publisher = Publisher(fail_records=False)
    status, text = await post(publisher)
    assert status == 200 and "the answer" in text
    assert [record.path for record in publisher.records] == ["passive"]


async def test_an_unconfirmed_passive_record_asks_wechat_to_retry():
    status, text = await post(Publisher(fail_records=True))
    assert status == 503 and "the answer" not in text


async def test_a_reply_not_ready_in_time_is_left_to_the_sender():
    publisher = Publisher(fail_records=True)  # waiting for the record would fail
    status, text = await post(publisher, Waiter(ready=False))
    assert status == 200 and text == "success"
    assert [(record.path, record.reason) for record in publisher.records] == [("deferred", "not ready in time")]
