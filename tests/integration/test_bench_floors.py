"""The ingress benchmark's produce floor on the real broker: the bare server with
`--kafka` answers `success` once the body is in the topic, keyed by the callback's
openid. The floor must stay what it claims to be, or the ratio reported beside the
ingress's goal means nothing."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from app.embedded.broker import start_broker
from app.kafka_admin import create_topics
from bench.bare_server import create_app
from tests.integration.kafka_helpers import read_topic

pytestmark = pytest.mark.integration

TOPIC = "bench.floor.v1"


async def test_the_produce_floor_answers_once_the_broker_has_the_body(tmp_path):
    broker, bootstrap = start_broker(tmp_path / "logs")
    try:
        create_topics(bootstrap, (TOPIC,), 2)
        async with TestClient(TestServer(create_app(bootstrap, TOPIC, one_record_batches=True))) as client:
            for n in range(3):
                response = await client.post(f"/wechat/bench?openid=oUser{n}&nonce={n}", data=b"<xml>%d</xml>" % n)
                assert (response.status, await response.text()) == (200, "success")
        records = await read_topic(bootstrap, TOPIC, until=lambda got: len(got) >= 3, timeout=20)
        assert sorted((r.key, r.value) for r in records) == [(b"oUser%d" % n, b"<xml>%d</xml>" % n) for n in range(3)]

    finally:
        broker.stop()
