"""The callback handler's passive reply: answered only once its delivery record is in the
broker. Any try at the record may land late and tell the sender the reply went passively,
so while the broker does not confirm it the handler tries again within the passive
window, and then asks WeChat to try again (503) rather than answering `success`. For the
same reason a retry that can only be spooled, but finds its reply, claims it too. A reply
not ready in time is handed over to the sender without waiting."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from app.accounts import Account
from app.ingress import handlers
from app.ingress.metrics import IngressMetrics
from app.ingress.passive import ReplyWaiter
from app.ingress.publisher import Persisted
from app.send import text_callback_xml
from app.settings import Settings
from app.topics import Reply, reply_id

ACCOUNT = Account(name="shop", token="shop-token", appid="wxshop0000000001")


NEVER = 10**9


class Publisher:
    """Fails the first `failures` delivery records it is asked to wait for."""

    def __init__(self, failures: int = 0, persisted: Persisted = Persisted.KAFKA) -> None:
        self.failures = failures
        self.persisted = persisted
        self.tries = 0
        self.records: list = []

    async def publish(self, raw) -> Persisted:
        return self.persisted

    async def record_delivery(self, delivery) -> None:
        self.tries += 1
        if self.tries <= self.failures:
            raise TimeoutError("no acknowledgement")
        self.records.append(delivery)

    def record_delivery_soon(self, delivery) -> None:
        self.records.append(delivery)


class Waiter(ReplyWaiter):
    """Has the reply at once when `ready`; never started (no broker)."""

    def __init__(self, ready: bool = True) -> None:
        super().__init__("127.0.0.1:9", fetch_max_wait_ms=25)
        self.ready = ready

    async def wait(self, account: str, openid: str, in_reply_to: str, timeout: float) -> Reply | None:
        if not self.ready:
            return None
        return Reply(
            reply_id=reply_id(account, in_reply_to),
            account=account,
            openid=openid,
            in_reply_to=in_reply_to,
            text="the answer",
            model="echo",
            created_at=time.time(),
        )


async def post(publisher: Publisher, waiter: Waiter | ReplyWaiter | None = None, window_s: float = 4.5, sender: str = "oUser"):
    app = web.Application()
    app[handlers.SETTINGS] = Settings.from_env({"WXSTREAM_PASSIVE_REPLY_WAIT_S": str(window_s)})
    app[handlers.ACCOUNTS] = {ACCOUNT.name: ACCOUNT}
    app[handlers.METRICS] = IngressMetrics()
    app[handlers.PUBLISHER] = publisher
    app[handlers.WAITER] = waiter or Waiter()
    app.router.add_post("/wechat/{account}", handlers.callback)
    now = int(time.time())
    xml = text_callback_xml(ACCOUNT, sender, "hi", msg_id=42, create_time=now)
    query, body = ACCOUNT.codec.encode_callback(xml, timestamp=str(now), nonce="1", encrypted=False, openid=sender)
    async with TestClient(TestServer(app)) as client:
        response = await client.post("/wechat/shop", params=query, data=body, headers={"Content-Type": "text/xml"})
        return response.status, await response.text()


async def test_the_reply_goes_back_once_its_delivery_is_recorded():
    publisher = Publisher()
    status, text = await post(publisher)
    assert status == 200 and "the answer" in text
    assert [record.path for record in publisher.records] == ["passive"]


async def test_a_record_the_broker_confirms_on_a_later_try_still_gives_the_passive_reply():
    publisher = Publisher(failures=2)
    status, text = await post(publisher, window_s=2.0)
    assert status == 200 and "the answer" in text
    assert publisher.tries == 3 and [record.path for record in publisher.records] == ["passive"]


async def test_a_record_never_confirmed_in_the_window_asks_wechat_to_retry():
    publisher = Publisher(failures=NEVER)
    status, text = await post(publisher, window_s=0.3)
    assert status == 503 and "the answer" not in text
    assert publisher.tries > 1  # tried again within the window


async def test_a_reply_not_ready_in_time_is_left_to_the_sender():
    publisher = Publisher(failures=NEVER)  # waiting for the record would fail
    status, text = await post(publisher, Waiter(ready=False))
    assert status == 200 and text == "success"
    assert [(record.path, record.reason) for record in publisher.records] == [("deferred", "not ready in time")]


async def test_a_spooled_retry_that_finds_its_reply_claims_it_and_answers_with_it():
    # An earlier attempt may have claimed the reply while the broker failed: `success`
    # would leave the user without it if that claim lands.
    publisher = Publisher(persisted=Persisted.SPOOL)
    status, text = await post(publisher, Waiter(ready=True))
    assert status == 200 and "the answer" in text
    assert [record.path for record in publisher.records] == ["passive"]


async def test_a_spooled_retry_that_cannot_claim_its_reply_asks_wechat_to_retry():
    publisher = Publisher(failures=NEVER, persisted=Persisted.SPOOL)
    status, text = await post(publisher, Waiter(ready=True), window_s=0.3)
    assert status == 503 and publisher.records == []


async def test_a_spooled_message_without_a_reply_yet_is_acknowledged():
    publisher = Publisher(persisted=Persisted.SPOOL)
    status, text = await post(publisher, Waiter(ready=False))
    assert status == 200 and text == "success" and publisher.records == []


async def test_a_callback_naming_another_users_message_gets_no_reply_of_theirs():
    waiter = ReplyWaiter("127.0.0.1:9", fetch_max_wait_ms=25)
    waiter._arrived(await Waiter().wait(ACCOUNT.name, "oUser", "msg:42", 0), now=time.monotonic())
    publisher = Publisher()

    status, text = await post(publisher, waiter, window_s=0.2, sender="oSomeoneElse")

    assert status == 200 and "the answer" not in text
    assert [(record.path, record.openid) for record in publisher.records] == [("deferred", "oSomeoneElse")]


class HangingPublisher(Publisher):
    """A broker that never answers: a try at the record waits as long as it is let."""

    async def record_delivery(self, delivery) -> None:
        self.tries += 1
        await asyncio.sleep(NEVER)


async def test_a_try_at_the_record_is_cut_short_to_answer_before_wechats_deadline(monkeypatch):
    monkeypatch.setattr(handlers, "WECHAT_DEADLINE_S", 1.0)  # answer by 0.7 s
    publisher = HangingPublisher()
    started = time.perf_counter()

    status, _ = await post(publisher, window_s=3.0)  # uncut, the try would last the window

    assert status == 503 and publisher.tries == 1
    assert time.perf_counter() - started < 2.0  # about 0.7 s; the rest is room for a busy machine


async def test_a_retry_after_a_late_first_answer_leaves_the_reply_to_the_sender():
    # The first attempt deferred the reply to the sender, but its answer reached WeChat
    # after the deadline; WeChat's retry finds the reply ready. Answering with it would
    # give the user a second copy of what the sender delivers.
    publisher, waiter = Publisher(), Waiter(ready=False)
    status, text = await post(publisher, waiter, window_s=0.1)
    assert (status, text) == (200, "success")

    waiter.ready = True
    status, text = await post(publisher, waiter)

    assert (status, text) == (200, "success")
    assert [record.path for record in publisher.records] == ["deferred"]
