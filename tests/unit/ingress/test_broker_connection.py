"""BrokerConnection: answers matched to requests in order, and every way a request fails.

The far end is a loopback server scripted by each test; the broker itself is in the
integration tests."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import pytest
from aiokafka.errors import KafkaConnectionError, RequestTimedOutError

from app.ingress.broker_link import BrokerConnection


class ScriptedBroker:
    """Reads request frames and hands them to the test, which writes what it likes back."""

    def __init__(self) -> None:
        self.requests: asyncio.Queue[bytes] = asyncio.Queue()
        self.writer: asyncio.StreamWriter | None = None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        while True:
            try:
                (size,) = struct.unpack(">i", await reader.readexactly(4))
                self.requests.put_nowait(await reader.readexactly(size))
            except asyncio.IncompleteReadError:
                return

    def answer(self, correlation_id: int, body: bytes = b"ok") -> bytes:
        payload = struct.pack(">i", correlation_id) + body
        return struct.pack(">i", len(payload)) + payload


def frame(correlation_id: int) -> bytes:
    payload = struct.pack(">hhi", 0, 3, correlation_id) + b"request"
    return struct.pack(">i", len(payload)) + payload


@pytest.fixture
async def broker() -> AsyncIterator[tuple[ScriptedBroker, int]]:
    scripted = ScriptedBroker()
    server = await asyncio.start_server(scripted.serve, "127.0.0.1", 0)
    yield scripted, server.sockets[0].getsockname()[1]
    server.close()
    if scripted.writer is not None:
        scripted.writer.close()


async def test_answers_go_to_their_requests_however_the_bytes_arrive(broker):
    scripted, port = broker
    connection = await BrokerConnection.open("127.0.0.1", port, timeout_s=5.0)
    answers = [connection.request(n, frame(n)) for n in (1, 2, 3)]
    for _ in range(3):
        await scripted.requests.get()
    stream = scripted.answer(1, b"first") + scripted.answer(2, b"second") + scripted.answer(3, b"third")
    for at in range(0, len(stream), 5):  # split across frames, and several in one read
        scripted.writer.write(stream[at : at + 5])
        await scripted.writer.drain()
        await asyncio.sleep(0.001)

    assert [(await answer)[4:] for answer in answers] == [b"first", b"second", b"third"]
    connection.close()


async def test_an_answer_out_of_order_closes_the_connection_and_fails_every_request(broker):
    scripted, port = broker
    connection = await BrokerConnection.open("127.0.0.1", port, timeout_s=5.0)
    answers = [connection.request(n, frame(n)) for n in (1, 2)]
    await scripted.requests.get()
    scripted.writer.write(scripted.answer(2))

    for answer in answers:
        with pytest.raises(KafkaConnectionError, match="out of order"):
            await answer
    assert connection.closed
    with pytest.raises(KafkaConnectionError, match="closed"):
        connection.request(3, frame(3))


async def two_requests(port: int, timeout_s: float, apart_s: float):
    """A connection and two requests on it, sent `apart_s` apart."""
    connection = await BrokerConnection.open("127.0.0.1", port, timeout_s=timeout_s)
    first = connection.request(1, frame(1))
    await asyncio.sleep(apart_s)
    return connection, first, connection.request(2, frame(2))


async def test_a_request_unanswered_in_time_closes_the_connection(broker):
    _, port = broker
    connection, first, second = await two_requests(port, timeout_s=0.1, apart_s=0.05)

    with pytest.raises(RequestTimedOutError, match="within 0.1s"):
        await first
    with pytest.raises(RequestTimedOutError):
        await second
    assert connection.closed


async def test_the_timer_follows_the_oldest_request_still_waiting(broker):
    scripted, port = broker
    connection, first, second = await two_requests(port, timeout_s=0.2, apart_s=0.15)
    scripted.writer.write(scripted.answer(1))

    await first
    await asyncio.sleep(0.1)  # past the first one's deadline, not the second's
    assert not connection.closed and not second.done()
    scripted.writer.write(scripted.answer(2))
    await second
    connection.close()


async def test_a_connection_the_broker_drops_fails_its_requests(broker):
    scripted, port = broker
    connection = await BrokerConnection.open("127.0.0.1", port, timeout_s=5.0)
    answer = connection.request(1, frame(1))
    await scripted.requests.get()
    scripted.writer.close()

    with pytest.raises(KafkaConnectionError, match="closed by the broker|lost"):
        await answer
    assert connection.closed
