"""Kafka's Produce request and response, version 3, written and read by hand.

The ingress writes each callback's records with acks=all and waits for the broker's
answer before it answers WeChat, so every produce round trip sits on a callback's
critical path. A round trip of one record, one every millisecond, cost 400 to 560 us of
the writer's CPU through aiokafka's producer (its generic struct encoding, a sender task,
a future and a timeout per layer), and 270 to 310 us through this module and
`BrokerLink`, most of it the event loop's and the socket's. Version 3 is the first with
record batches (format v2): every Kafka since 0.11 accepts it, 4.x included.

Pure: bytes in, bytes out. The connection that carries them is `app.ingress.broker_link`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterable, Mapping

__all__ = ("ACKS_ALL", "PRODUCE_VERSION", "PartitionResult", "produce_request", "produce_response", "refusals")

PRODUCE_API_KEY = 0
PRODUCE_VERSION = 3
ACKS_ALL = -1

_FRAME_HEAD = struct.Struct(">ihhih")  # size; header v1: api key, version, correlation id, client id length
_BODY_HEAD = struct.Struct(">hhii")  # transactional id (null), acks, timeout ms, topic count
_PARTITION = struct.Struct(">ii")  # partition, records length
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_RESULT = struct.Struct(">ihqq")  # partition, error code, base offset, log append time


@dataclass(frozen=True, slots=True)
class PartitionResult:
    """The broker's answer for one partition of a produce request."""

    topic: str
    partition: int
    error_code: int  # 0: stored
    base_offset: int  # offset of the first record stored; -1 on error


def produce_request(
    correlation_id: int, client_id: str, acks: int, timeout_ms: int, batches: Mapping[tuple[str, int], bytes]
) -> bytes:
    """The whole frame (size prefix included) of a request writing, per (topic, partition),
    its records: one or more encoded record batches."""
    by_topic: dict[str, list[tuple[int, bytes]]] = {}
    for (topic, partition), records in batches.items():
        by_topic.setdefault(topic, []).append((partition, records))
    client = client_id.encode("utf-8")
    parts = [b"", client, _BODY_HEAD.pack(-1, acks, timeout_ms, len(by_topic))]
    for topic, partitions in by_topic.items():
        name = topic.encode("utf-8")
        parts += (_INT16.pack(len(name)), name, _INT32.pack(len(partitions)))
        for partition, records in partitions:
            parts += (_PARTITION.pack(partition, len(records)), records)
    size = _FRAME_HEAD.size - 4 + sum(map(len, parts))
    parts[0] = _FRAME_HEAD.pack(size, PRODUCE_API_KEY, PRODUCE_VERSION, correlation_id, len(client))
    return b"".join(parts)


def produce_response(payload: bytes) -> tuple[int, list[PartitionResult]]:
    """The correlation id and per-partition results of a response frame (without its size
    prefix). Raises ValueError when the payload is cut short."""
    try:
        (correlation_id,) = _INT32.unpack_from(payload, 0)
        offset = 4
        (topics,) = _INT32.unpack_from(payload, offset)
        offset += 4
        results = []
        for _ in range(topics):
            (length,) = _INT16.unpack_from(payload, offset)
            offset += 2
            topic = payload[offset : offset + length].decode("utf-8")
            offset += length
            (partitions,) = _INT32.unpack_from(payload, offset)
            offset += 4
            for _ in range(partitions):
                partition, error_code, base_offset, _ = _RESULT.unpack_from(payload, offset)
                offset += _RESULT.size
                results.append(PartitionResult(topic, partition, error_code, base_offset))
    except struct.error as exc:
        raise ValueError(f"produce response cut short: {exc}") from None
    return correlation_id, results


def refusals(sent: Iterable[tuple[str, int]], results: Iterable[PartitionResult]) -> dict[tuple[str, int], int | None]:
    """The partitions of a request the broker did not store: its error code for each, or
    None where its answer does not mention the partition."""
    answered = {(result.topic, result.partition): result.error_code for result in results}
    refused: dict[tuple[str, int], int | None] = {}
    for tp in sent:
        code = answered.get(tp)
        if code != 0:
            refused[tp] = code
    return refused
