"""The data tools' side of Kafka (kafka-python, synchronous): finding and connecting to the
broker, the offsets of a topic's partitions, and reading spans of offsets.

The broker is `WXSTREAM_KAFKA_URL`, else the one of the `wxstream up` running in this data
dir, found the way `wxstream send` finds it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Iterator, Mapping

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata

from app.datatools.records import TopicRecord, decode
from app.offsets import first_offset_at
from app.send import SendError, resolve_endpoints
from app.settings import Settings
from app.topics import TopicSpec

__all__ = (
    "FLUSH_TIMEOUT_S",
    "DataToolError",
    "Produced",
    "Span",
    "find_bootstrap",
    "open_consumer",
    "open_admin",
    "open_producer",
    "partitions_of",
    "spans_from",
    "read",
    "topic_record",
)

CONNECT_TIMEOUT_MS = 5000
POLL_MS = 500
FLUSH_TIMEOUT_S = 60.0


class DataToolError(RuntimeError):
    """The broker cannot be reached or lacks a topic; the message says what to check."""


def find_bootstrap(settings: Settings) -> str:
    try:
        return resolve_endpoints(settings).kafka_url
    except SendError as exc:
        raise DataToolError(str(exc)) from None


def _unreachable(bootstrap: str, exc: Exception) -> DataToolError:
    return DataToolError(
        f"no Kafka broker answers at {bootstrap} ({type(exc).__name__}); it comes from WXSTREAM_KAFKA_URL or, "
        "when that is unset, from the running `wxstream up` of this data dir: is it running?"
    )


def open_consumer(bootstrap: str, client_id: str) -> KafkaConsumer:
    """A consumer outside any group: it reads what it is assigned and commits nothing."""
    try:
        return KafkaConsumer(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            enable_auto_commit=False,
            allow_auto_create_topics=False,
            bootstrap_timeout_ms=CONNECT_TIMEOUT_MS,
        )
    except KafkaError as exc:
        raise _unreachable(bootstrap, exc) from None


def open_admin(bootstrap: str, client_id: str) -> KafkaAdminClient:
    try:
        return KafkaAdminClient(
            bootstrap_servers=bootstrap, client_id=client_id, bootstrap_timeout_ms=CONNECT_TIMEOUT_MS
        )
    except KafkaError as exc:
        raise _unreachable(bootstrap, exc) from None


def open_producer(settings: Settings, bootstrap: str, client_id: str) -> KafkaProducer:
    """Acknowledged by all replicas, batched as every wxstream producer is (one record per
    batch on the embedded broker)."""
    try:
        return KafkaProducer(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            acks="all",
            batch_size=settings.producer_max_batch_bytes,
            linger_ms=settings.kafka_linger_ms,
            allow_auto_create_topics=False,
            bootstrap_timeout_ms=CONNECT_TIMEOUT_MS,
        )
    except KafkaError as exc:
        raise _unreachable(bootstrap, exc) from None


@dataclass
class Produced:
    """The outcomes of records sent without waiting, updated from the producer's I/O thread."""

    acked: int = 0
    failed: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def track(self, sent: FutureRecordMetadata) -> None:
        sent.add_callback(self.ack)
        sent.add_errback(self.fail)

    def ack(self, _metadata: object) -> None:
        with self._lock:
            self.acked += 1

    def fail(self, exc: BaseException) -> None:
        with self._lock:
            self.failed.append(f"{type(exc).__name__}: {exc}")


def partitions_of(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    """The topic's partitions, in order; [] when the broker has no such topic."""
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]


@dataclass(frozen=True)
class Span:
    """Offsets `start <= offset < stop` of one partition."""

    start: int
    stop: int


def spans_from(
    consumer: KafkaConsumer, partitions: list[TopicPartition], since_ms: int | None
) -> dict[TopicPartition, Span]:
    """Per partition: from the first record at or after `since_ms` (None: the beginning) to
    the end as it is now, so that what is written meanwhile, replays included, is not read."""
    begins = consumer.beginning_offsets(partitions)
    ends = consumer.end_offsets(partitions)
    if since_ms is None:
        return {tp: Span(begins[tp], ends[tp]) for tp in partitions}
    found = consumer.offsets_for_times({tp: since_ms for tp in partitions})
    return {tp: Span(first_offset_at(found.get(tp), since_ms, begins[tp], ends[tp]), ends[tp]) for tp in partitions}


def read(
    consumer: KafkaConsumer, starts: Mapping[TopicPartition, int], stops: Mapping[TopicPartition, int] | None = None
) -> Iterator[ConsumerRecord]:
    """Records from `starts` on, in offset order within each partition: up to `stops`
    (exclusive), or, without `stops`, forever (following the topic)."""
    active = [tp for tp in starts if stops is None or starts[tp] < stops[tp]]
    if not active:
        return
    consumer.assign(active)
    consumer.resume(*active)  # an earlier read of the same partitions paused them at its end
    for tp in active:
        consumer.seek(tp, starts[tp])
    while active:
        for tp, records in consumer.poll(timeout_ms=POLL_MS).items():
            for record in records:
                if stops is not None and record.offset >= stops[tp]:
                    break
                yield record
        if stops is not None:
            done = [tp for tp in active if consumer.position(tp) >= stops[tp]]
            if done:
                consumer.pause(*done)
                active = [tp for tp in active if tp not in done]


def topic_record(spec: TopicSpec, record: ConsumerRecord) -> TopicRecord:
    return decode(spec, record.partition, record.offset, record.timestamp, record.key, record.value)
