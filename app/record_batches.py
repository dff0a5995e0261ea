"""One-record batches for the embedded broker, many of them per produce request.

The embedded broker answers ListOffsets wrongly for batches of several records (README,
"The embedded broker's one known bug"), so against it every record goes in a batch of its
own. aiokafka can only do that with a one-byte batch limit, which also limits each produce
request to one record per partition: every record then pays for a request, a response,
a socket write and a wake-up of the broker, on both sides.

A produce request's records field may hold several batches one after another, and the
embedded broker stores each as it comes. :class:`OneRecordBatchBuilder` takes the place
of aiokafka's batch builder: it fills a request as a normal batch would (up to the
producer's batch size) but writes each record as a batch of its own, so end offsets stay
exact while one request carries many records. Kafka itself accepts a single batch per
partition per request, and does not need one-record batches: use this with the embedded
broker only (`Settings.one_record_batches`).
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import BatchBuilder, MessageAccumulator
from aiokafka.record.default_records import DefaultRecordBatchBuilder, DefaultRecordMetadata

from app.settings import PRODUCER_BATCH_BYTES

__all__ = ("OneRecordBatchBuilder", "batch_builders", "pack_one_record_batches")

_MAGIC = 2  # record batch format v2, the only one aiokafka writes
_NO_LIMIT = 1 << 30  # each inner batch holds one record; the limit applies to their sum
_UNCOMPRESSED = 0


class OneRecordBatchBuilder(BatchBuilder):
    """aiokafka's batch builder, writing one record batch per record."""

    def __init__(self, batch_size: int, compression_type: int, **kwargs: object) -> None:
        super().__init__(batch_size, compression_type, **kwargs)  # type: ignore[arg-type]
        self._batch_size = batch_size
        self._compression_type = compression_type
        self._records: list[bytearray] = []
        self._bytes = 0

    def append(self, *, timestamp: int | None, key: bytes | None, value: bytes | None, headers: Sequence = ()):  # type: ignore[override]
        """Add a record as a batch of its own; None when the request is full (the first always fits)."""
        if self._closed:
            return None
        key, value = self._serialize(key, value)
        builder = DefaultRecordBatchBuilder(_MAGIC, self._compression_type, 0, -1, -1, 0, _NO_LIMIT)
        written = builder.append(0, timestamp, key=key, value=value, headers=list(headers))
        batch = builder.build()
        if self._records and self._bytes + len(batch) > self._batch_size:
            self.close()
            return None
        self._records.append(batch)
        self._bytes += len(batch)
        # The offset relative to the request's first record: aiokafka adds the base offset
        # the broker answers with to tell each sender where its record landed.
        metadata = DefaultRecordMetadata(self._relative_offset, written.size, written.timestamp)
        self._relative_offset += 1
        return metadata

    def _build(self) -> bytes:
        self.close()
        if self._buffer is None:
            self._buffer = b"".join(self._records)
            self._records = []
        return self._buffer

    def size(self) -> int:
        return len(self._buffer) if self._buffer is not None else self._bytes

    def _set_producer_state(self, producer_id: int, producer_epoch: int, base_sequence: int) -> None:
        raise NotImplementedError("one-record batches need a producer without idempotence or transactions")


def pack_one_record_batches(producer: AIOKafkaProducer) -> None:
    """Make `producer` (not started yet, neither idempotent nor transactional) write every
    record as a batch of its own, filling each request with as many as its batch size allows.

    aiokafka has no setting for the batch format; its accumulator's builder factory is the
    one place that decides it (also behind the public `create_batch`)."""
    accumulator: MessageAccumulator = producer._message_accumulator
    if producer._txn_manager is not None:
        raise ValueError("one-record batches need a producer without idempotence or transactions")

    def create_builder(key_serializer=None, value_serializer=None) -> OneRecordBatchBuilder:
        return OneRecordBatchBuilder(
            accumulator._batch_size,
            accumulator._compression_type,
            key_serializer=key_serializer,
            value_serializer=value_serializer,
        )

    accumulator.create_builder = create_builder  # type: ignore[method-assign]


def batch_builders(one_record_batches: bool, batch_size: int = PRODUCER_BATCH_BYTES) -> Callable[[], BatchBuilder]:
    """Where empty batches come from, for a writer that builds its own requests: aiokafka's
    builders, of one-record batches (for the embedded broker) or of Kafka's usual ones."""
    builder = OneRecordBatchBuilder if one_record_batches else BatchBuilder
    return partial(builder, batch_size, _UNCOMPRESSED)
