"""The ingress's produce path to the brokers: one connection per broker, requests written
with `app.kafka_produce`, answers matched in order.

aiokafka's client still does what it does well and rarely: bootstrapping, and the
cluster's metadata (which broker leads which partition), refreshed in the background and
on demand. What happens once per request does not go through it; the module docstring
of `app.kafka_produce` says why. Which batches go in a request, and what to do when one
fails, is the `RecordBatcher`'s business.

A request waits for the broker's answer at most `timeout_s`; past that its connection is
closed, failing every request on it, as aiokafka does: the broker answers a connection's
requests in order, so those behind a lost answer would never get theirs. A request
answered by no one may still have been stored: sent again, its records are written
twice, which both topics the ingress writes allow (the dedupe agent drops copies of raw
events, and a delivery record written twice says the same thing twice).
"""

from __future__ import annotations

import asyncio
import struct
from collections import deque
from typing import Mapping, cast

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    LeaderNotAvailableError,
    RequestTimedOutError,
    UnknownTopicOrPartitionError,
    for_code,
)
from aiokafka.structs import TopicPartition

from app.kafka_produce import ACKS_ALL, produce_request, produce_response, refusals

__all__ = ("BrokerConnection", "BrokerLink")

METADATA_RETRY_S = 0.1  # between asking for a topic the metadata lacks
_SIZE = struct.Struct(">i")
_CORRELATION_IDS = 1 << 31


class BrokerConnection(asyncio.Protocol):
    """One TCP connection to a broker, carrying produce requests and their answers."""

    def __init__(self, address: str, timeout_s: float) -> None:
        self._address = address
        self._timeout_s = timeout_s
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._pending: deque[tuple[int, float, asyncio.Future[bytes]]] = deque()  # in the order sent
        self._timer: asyncio.TimerHandle | None = None
        self.closed = False

    @classmethod
    async def open(cls, host: str, port: int, timeout_s: float) -> BrokerConnection:
        loop = asyncio.get_running_loop()
        _, connection = await asyncio.wait_for(
            loop.create_connection(lambda: cls(f"{host}:{port}", timeout_s), host, port), timeout_s
        )
        return connection

    def request(self, correlation_id: int, frame: bytes) -> asyncio.Future[bytes]:
        """Write `frame`; the future gets the answer's payload (size prefix removed), or
        KafkaConnectionError / RequestTimedOutError."""
        if self.closed or self._transport is None:
            raise KafkaConnectionError(f"connection to {self._address} is closed")
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bytes] = loop.create_future()
        self._pending.append((correlation_id, loop.time() + self._timeout_s, answer))
        self._transport.write(frame)
        if self._timer is None:
            self._timer = loop.call_at(self._pending[0][1], self._expire)
        return answer

    def close(self, error: KafkaError | None = None) -> None:
        """Close the connection; requests still waiting fail with `error`."""
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            self._transport.close()
        failure = error or KafkaConnectionError(f"connection to {self._address} closed")
        while self._pending:
            _, _, answer = self._pending.popleft()
            if not answer.done():
                answer.set_exception(failure)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        self.close(KafkaConnectionError(f"connection to {self._address} lost: {exc or 'closed by the broker'}"))

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while len(buffer) >= 4:
            (size,) = _SIZE.unpack_from(buffer)
            if len(buffer) < 4 + size:
                return
            payload = bytes(buffer[4 : 4 + size])
            del buffer[: 4 + size]
            self._answered(payload)

    def _answered(self, payload: bytes) -> None:
        if not self._pending or len(payload) < 4 or _SIZE.unpack_from(payload)[0] != self._pending[0][0]:
            # Answers come in the order of the requests: one out of place means the
            # stream is not what we think it is.
            self.close(KafkaConnectionError(f"answer out of order from {self._address}"))
            return
        _, _, answer = self._pending.popleft()
        if not answer.done():
            answer.set_result(payload)

    def _expire(self) -> None:
        """Close the connection once its oldest request waited too long. A request its
        caller gave up on still waits here: its answer comes in its turn all the same."""
        self._timer = None
        if not self._pending:
            return
        loop = asyncio.get_running_loop()
        if self._pending[0][1] <= loop.time():
            self.close(RequestTimedOutError(f"no answer from {self._address} within {self._timeout_s:g}s"))
        else:
            self._timer = loop.call_at(self._pending[0][1], self._expire)


class BrokerLink:
    """Writes record batches to the brokers that lead their partitions, acks=all."""

    def __init__(self, bootstrap: str, client_id: str, timeout_s: float) -> None:
        self._client_id = client_id
        self._timeout_s = timeout_s
        self._timeout_ms = int(timeout_s * 1000)
        self._client = AIOKafkaClient(
            bootstrap_servers=bootstrap, client_id=client_id, request_timeout_ms=self._timeout_ms
        )
        self._connections: dict[int, BrokerConnection] = {}
        self._connecting: dict[int, asyncio.Task[BrokerConnection]] = {}
        self._correlation_id = 0

    async def start(self) -> None:
        """Fetch the cluster's metadata; raises while no broker answers."""
        await self._client.bootstrap()

    async def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()
        await self._client.close()

    def known_partitions(self, topic: str) -> set[int] | None:
        """The topic's partitions, if the metadata has them already."""
        return self._client.cluster.partitions_for_topic(topic)

    async def partitions(self, topic: str) -> set[int]:
        """The topic's partitions, asking the broker when the metadata lacks them."""
        self._client.add_topic(topic)
        give_up_at = asyncio.get_running_loop().time() + self._timeout_s
        while (partitions := self.known_partitions(topic)) is None:
            if asyncio.get_running_loop().time() >= give_up_at:
                raise UnknownTopicOrPartitionError(f"topic {topic} is not in the cluster's metadata")
            await self.refresh()
            if self.known_partitions(topic) is None:
                await asyncio.sleep(METADATA_RETRY_S)
        return partitions

    def leader(self, topic: str, partition: int) -> int | None:
        """The broker that leads the partition, as far as the metadata knows."""
        node = self._client.cluster.leader_for_partition(TopicPartition(topic, partition))
        return node if node is not None and node >= 0 else None

    async def refresh(self) -> None:
        """Fetch the cluster's metadata again, as after a leader moved."""
        await self._client.force_metadata_update()

    async def produce(
        self, node_id: int, batches: Mapping[tuple[str, int], bytes]
    ) -> dict[tuple[str, int], KafkaError]:
        """Write each (topic, partition)'s records (record batches) with acks=all in one
        request to broker `node_id`; return the partitions the broker refused, with its
        error. Raises KafkaError when the request got no answer (connection lost, or none
        within `timeout_s`): the records may or may not have been stored."""
        connection = self._connections.get(node_id)
        if connection is None or connection.closed:
            connection = await self._connect(node_id)
        self._correlation_id = (self._correlation_id + 1) % _CORRELATION_IDS
        frame = produce_request(self._correlation_id, self._client_id, ACKS_ALL, self._timeout_ms, batches)
        _, results = produce_response(await connection.request(self._correlation_id, frame))
        return {
            (topic, partition): (
                for_code(code)(f"{topic}-{partition}")
                if code is not None
                else KafkaError(f"the broker's answer says nothing of {topic}-{partition}")
            )
            for (topic, partition), code in refusals(batches, results).items()
        }

    async def _connect(self, node_id: int) -> BrokerConnection:
        """The connection to broker `node_id`, opened once however many wait for it."""
        task = self._connecting.get(node_id)
        if task is None:
            task = self._connecting[node_id] = asyncio.ensure_future(self._open(node_id))
            task.add_done_callback(lambda _: self._connecting.pop(node_id, None))
        return await asyncio.shield(task)

    async def _open(self, node_id: int) -> BrokerConnection:
        broker = self._client.cluster.broker_metadata(node_id)
        if broker is None:
            raise LeaderNotAvailableError(f"broker {node_id} is not in the cluster's metadata")
        try:
            connection = await BrokerConnection.open(broker.host, broker.port, self._timeout_s)
        except (OSError, asyncio.TimeoutError) as exc:
            where = f"{broker.host}:{broker.port}"
            raise KafkaConnectionError(f"cannot connect to broker {node_id} at {where}: {exc}") from None
        self._connections[node_id] = connection
        return connection
