"""Produce v3 written and read by hand, byte for byte as aiokafka's protocol classes do."""

from __future__ import annotations

import struct

import pytest
from aiokafka.protocol.produce import ProduceRequest_v3, ProduceResponse_v3
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from app.kafka_produce import ACKS_ALL, PartitionResult, produce_request, produce_response, refusals


def _records(text: bytes) -> bytes:
    builder = DefaultRecordBatchBuilder(2, 0, 0, -1, -1, 0, 16384)
    builder.append(0, 1_700_000_000_000, key="shop:oUser".encode(), value=b'{"msg":"%s"}' % text, headers=[])
    return bytes(builder.build())


def test_a_request_is_what_aiokafka_writes_for_the_same_records():
    raw, more, deliveries = _records(b"first"), _records(b"second"), _records(b"third")
    topics = [("wxstream.raw-events", [(3, raw), (0, more)]), ("wxstream.deliveries", [(1, deliveries)])]
    request = ProduceRequest_v3(None, ACKS_ALL, 1000, topics)
    header = request.build_request_header(correlation_id=42, client_id="wxstream-ingress")
    message = header.encode() + request.encode()

    frame = produce_request(
        42,
        "wxstream-ingress",
        ACKS_ALL,
        1000,
        {("wxstream.raw-events", 3): raw, ("wxstream.deliveries", 1): deliveries, ("wxstream.raw-events", 0): more},
    )

    assert frame == struct.pack(">i", len(message)) + message


def test_an_answer_aiokafka_writes_is_read_per_partition():
    body = ProduceResponse_v3([("raw", [(0, 0, 17, -1), (2, 6, -1, -1)]), ("deliveries", [(1, 0, 5, -1)])], 0).encode()

    correlation_id, results = produce_response(struct.pack(">i", 42) + body)

    assert correlation_id == 42
    assert results == [
        PartitionResult("raw", 0, 0, 17),
        PartitionResult("raw", 2, 6, -1),  # NOT_LEADER_FOR_PARTITION
        PartitionResult("deliveries", 1, 0, 5),
    ]


def test_an_answer_cut_short_is_a_clear_error():
    body = ProduceResponse_v3([("raw", [(0, 0, 17, -1)])], 0).encode()

    with pytest.raises(ValueError, match="cut short"):
        produce_response(struct.pack(">i", 42) + body[:12])


def test_refusals_are_the_partitions_sent_and_not_stored():
    results = [PartitionResult("raw", 0, 0, 17), PartitionResult("raw", 2, 6, -1), PartitionResult("other", 0, 3, -1)]

    refused = refusals([("raw", 0), ("raw", 2), ("deliveries", 1)], results)

    assert refused == {("raw", 2): 6, ("deliveries", 1): None}  # refused; not mentioned at all
