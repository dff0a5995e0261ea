"""What the publisher writes for a record (exactly what the record's own `dumps()` writes),
and what becomes of a record it does not wait for."""

from __future__ import annotations

import asyncio
import json
import logging
import threading

import pytest
from aiokafka.errors import KafkaConnectionError

from app.ingress.metrics import IngressMetrics
from app.ingress.publisher import Persisted, RawEventPublisher, record_json
from app.ingress.spool import Spool, SpoolCorruptError
from app.settings import Settings
from app.topics import Delivery, RawEvent


def test_record_json_is_the_records_dumps():
    event = RawEvent(
        account="shop",
        openid="o6_bmjrPTlm6_2sgVt7hMZOPfL2M",
        msg_type="text",
        dedupe_key="msg:1234567890123456",
        fields={"Content": '你好 "quoted" \\ 🙏\n', "MsgId": "1234567890123456"},
        received_at=1_700_000_000.123456,
        encrypted=True,
    )
    delivery = Delivery(
        reply_id="0123456789abcdef01234567",
        account="shop",
        openid="o6_bmjrPTlm6_2sgVt7hMZOPfL2M",
        path="deferred",
        delivered_at=1_700_000_001.5,
        reason="not ready in time",
    )

    for record in (event, delivery):
        assert record_json(record) == record.dumps()


class RefusingBatcher:
    async def send(self, topic: str, key: bytes, value: bytes, *, bounded: bool = True) -> None:
        await asyncio.sleep(0)
        raise TimeoutError("not acknowledged by the broker within 2s")


async def test_a_record_not_waited_for_reports_its_failure_in_the_log(caplog):
    publisher = RawEventPublisher(Settings.from_env({}), "127.0.0.1:9")
    publisher._batcher = RefusingBatcher()
    delivery = Delivery(reply_id="r1", account="shop", openid="oUser", path="deferred", delivered_at=1.0)

    with caplog.at_level(logging.WARNING, logger="wxstream.ingress.publisher"):
        assert publisher.record_delivery_soon(delivery) is None
        for _ in range(5):
            await asyncio.sleep(0)

    assert "delivery record of r1 (deferred) not written: not acknowledged" in caplog.text


class FlakyBatcher:
    """Refuses the first `failures` sends, then takes everything."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[bytes] = []

    async def send(self, topic: str, key: bytes, value: bytes, *, bounded: bool = True) -> None:
        await asyncio.sleep(0)
        if self.failures:
            self.failures -= 1
            raise TimeoutError("not acknowledged by the broker within 1s")
        self.sent.append(value)


class FullDisk:
    """A spool on a full disk: nothing can be appended, so nothing is ever spooled."""

    def append(self, key: bytes, value: bytes) -> int:
        raise OSError(28, "No space left on device")

    def __len__(self) -> int:
        return 0


def _event(n: int) -> RawEvent:
    return RawEvent(account="shop", openid="oUser", msg_type="text", dedupe_key=f"msg:{n}", fields={"MsgId": str(n)}, received_at=1.0)


async def test_with_the_spool_failing_the_broker_is_tried_again_once_it_is_back():
    publisher = RawEventPublisher(Settings.from_env({}), "127.0.0.1:9", spool=FullDisk())
    publisher._batcher = batcher = FlakyBatcher(failures=1)
    publisher.broker_ok = True

    with pytest.raises(OSError):  # neither the broker nor the spool: WeChat will retry
        await publisher.publish(_event(1))
    assert publisher.broker_ok is False

    assert await publisher.publish(_event(2)) is Persisted.KAFKA
    assert publisher.broker_ok is True
    assert [json.loads(value)["dedupe_key"] for value in batcher.sent] == ["msg:2"]


class SlowBroker:
    """Acknowledges every record after one round trip; counts how many are in flight."""

    def __init__(self) -> None:
        self.in_flight = self.most_in_flight = 0
        self.sent: list[bytes] = []

    async def send(self, topic: str, key: bytes, value: bytes, *, bounded: bool = True) -> None:
        self.sent.append(value)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.01)
        self.in_flight -= 1


async def test_the_spool_drains_a_batch_in_about_one_round_trip_and_in_order(tmp_path):
    with Spool(tmp_path) as spool:
        for n in range(50):
            spool.append(b"oUser", _event(n).dumps())
        publisher = RawEventPublisher(Settings.from_env({}), "127.0.0.1:9", spool=spool)
        publisher._batcher = broker = SlowBroker()

        await publisher._drain_once()

        assert len(spool) == 0 and publisher.broker_ok
        assert broker.most_in_flight == 50
        assert [json.loads(value)["dedupe_key"] for value in broker.sent] == [f"msg:{n}" for n in range(50)]


async def test_the_spools_oldest_wait_is_a_metric(tmp_path):
    metrics = IngressMetrics()
    with Spool(tmp_path) as spool:
        publisher = RawEventPublisher(Settings.from_env({}), "127.0.0.1:9", spool=spool, metrics=metrics)
        publisher._batcher = RefusingBatcher()
        assert metrics.registry.get_sample_value("wxstream_ingress_spool_oldest_age_seconds") == 0
        assert await publisher.publish(_event(1)) is Persisted.SPOOL
        await asyncio.sleep(0.05)
        assert metrics.registry.get_sample_value("wxstream_ingress_spool_oldest_age_seconds") >= 0.05


async def test_batches_sent_again_are_counted_by_failure():
    metrics = IngressMetrics()
    publisher = RawEventPublisher(Settings.from_env({}), "127.0.0.1:9", metrics=metrics)

    publisher._batcher._on_retry(("wxstream.events.raw.v1", 0), KafkaConnectionError("connection lost"))

    sample = metrics.registry.get_sample_value("wxstream_ingress_produce_retries_total", {"error": "KafkaConnectionError"})
    assert sample == 1


async def test_a_batch_whose_ack_failed_is_not_sent_again_and_the_broker_counts_as_up(tmp_path, monkeypatch):
    with Spool(tmp_path, fsync=False) as spool:
        for n in range(3):
            spool.append(b"oUser", _event(n).dumps())
        publisher = RawEventPublisher(Settings.from_env({}), "127.0.0.1:9", spool=spool)
        publisher._batcher = broker = SlowBroker()
        ack = spool.ack

        def full_disk(seq: int) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(spool, "ack", full_disk)
        with pytest.raises(OSError):
            await publisher._drain_once()
        assert publisher.broker_ok and len(broker.sent) == 3

        monkeypatch.setattr(spool, "ack", ack)
        await publisher._drain_once()
        assert len(spool) == 0 and len(broker.sent) == 3, "acked, not sent a second time"


class HeldSpool:
    """A spool whose appends wait until released, as an fsync on a slow disk does."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.release = threading.Event()

    def append(self, key: bytes, value: bytes) -> int:
        self.release.wait(5)
        return self.spool.append(key, value)

    def __len__(self) -> int:
        return len(self.spool)


async def test_an_event_waits_behind_a_spool_append_under_way(tmp_path):
    with Spool(tmp_path, fsync=False) as spool:
        first = spool.append(b"oUser", _event(0).dumps())
        held = HeldSpool(spool)
        publisher = RawEventPublisher(Settings.from_env({}), "127.0.0.1:9", spool=held)
        publisher._batcher = broker = SlowBroker()
        publisher.broker_ok = True
        behind = asyncio.ensure_future(publisher.publish(_event(1)))  # after event 0: to the spool
        await asyncio.sleep(0.05)
        spool.ack(first)  # the drain took event 0 meanwhile: the spool looks empty
        later = asyncio.ensure_future(publisher.publish(_event(2)))
        await asyncio.sleep(0.05)
        held.release.set()
        assert await behind is Persisted.SPOOL
        assert await later is Persisted.SPOOL, "not to the broker ahead of event 1"
        assert broker.sent == []


async def test_damage_stops_the_drain_for_good_and_the_spool_still_takes_callbacks(tmp_path, monkeypatch, caplog):
    with Spool(tmp_path, fsync=False) as spool:
        spool.append(b"oUser", _event(0).dumps())
        publisher = RawEventPublisher(Settings.from_env({}), "127.0.0.1:9", spool=spool)
        publisher._batcher = broker = SlowBroker()
        peeks = 0

        def damaged(limit: int) -> list:
            nonlocal peeks
            peeks += 1
            raise SpoolCorruptError(tmp_path / "spool-00000000000000000001.log", 46, "crc mismatch")

        monkeypatch.setattr(spool, "peek", damaged)
        with caplog.at_level(logging.ERROR, logger="wxstream.ingress.publisher"):
            publisher._pending.set()
            await asyncio.wait_for(publisher._drain_forever(), 2)

        assert peeks == 1 and broker.sent == []
        assert publisher.spool_damage is not None and "offset 46: crc mismatch" in publisher.spool_damage
        assert "Restart this ingress" in caplog.text and "salvage-spool" in caplog.text
        assert await publisher.publish(_event(1)) is Persisted.SPOOL
        assert len(spool) == 2
