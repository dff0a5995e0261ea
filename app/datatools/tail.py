"""`wxstream tail TOPIC`: a topic's records, one line each (or one JSON object each).

Starts with the last 10 matching records (`-n`), at the beginning (`--from-beginning`) or
at a time (`--since`), then follows the topic until Ctrl-C, unless `--no-follow`. Records
are in offset order within a partition; the last N are in time order across partitions.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from itertools import chain
from typing import IO, Callable, Iterable

from kafka import KafkaConsumer, TopicPartition

from app.datatools.broker import (
    DataToolError,
    Span,
    find_bootstrap,
    open_consumer,
    partitions_of,
    read,
    spans_from,
    topic_record,
)
from app.datatools.command import UsageError, datatool
from app.datatools.records import EVENT_TOPICS, RecordFilter, TopicRecord, format_json, format_line, resolve_topic
from app.datatools.timerange import TimeRange, parse_range
from app.settings import Settings
from app.topics import TopicSpec

__all__ = ("TailPlan", "plan_tail", "newest", "run_tail")

DEFAULT_LAST = 10
MIN_CHUNK = 100  # records read per partition in the first step back from the end


@dataclass(frozen=True)
class TailPlan:
    spec: TopicSpec
    since: TimeRange  # only `since` is set: nothing stops a tail but its end
    from_beginning: bool
    last: int | None  # the last N matching records first; None: start at the beginning or `since`
    follow: bool
    filter: RecordFilter
    as_json: bool

    def keep(self, record: TopicRecord) -> bool:
        return self.since.contains_ms(record.timestamp_ms) and self.filter.matches(record)


def plan_tail(args: argparse.Namespace, now: float) -> TailPlan:
    spec = resolve_topic(args.topic)
    if args.type and spec not in EVENT_TOPICS:
        raise UsageError(f"--type filters message types, which only {' and '.join(s.name for s in EVENT_TOPICS)} have")
    if args.last is not None and args.last < 0:
        raise UsageError(f"-n must be >= 0, got {args.last}")
    starts_elsewhere = args.from_beginning or args.since is not None
    return TailPlan(
        spec=spec,
        since=parse_range(args.since, None, now),
        from_beginning=args.from_beginning,
        last=args.last if args.last is not None else (None if starts_elsewhere else DEFAULT_LAST),
        follow=args.follow,
        filter=RecordFilter(account=args.account, openid=args.openid, type=args.type),
        as_json=args.json,
    )


def newest(per_partition: Iterable[list[TopicRecord]], n: int) -> list[TopicRecord]:
    """The `n` latest records of all partitions, oldest first."""
    ordered = sorted(chain.from_iterable(per_partition), key=lambda r: (r.timestamp_ms, r.partition, r.offset))
    return ordered[max(0, len(ordered) - n) :]


def _last_matching(
    consumer: KafkaConsumer, plan: TailPlan, tp: TopicPartition, span: Span, n: int
) -> list[TopicRecord]:
    """The last `n` records of one partition that `plan` keeps, reading back from the end
    in growing steps, so that a rare match does not mean reading the whole partition at once."""
    found: list[TopicRecord] = []
    stop, size = span.stop, max(n, MIN_CHUNK)
    while stop > span.start and len(found) < n:
        start = max(span.start, stop - size)
        step = [topic_record(plan.spec, r) for r in read(consumer, {tp: start}, {tp: stop})]
        found = [record for record in step if plan.keep(record)] + found
        stop, size = start, size * 2
    return found[max(0, len(found) - n) :]


@datatool("tail")
def run_tail(settings: Settings, args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    plan = plan_tail(args, time.time())
    bootstrap = find_bootstrap(settings)
    consumer = open_consumer(bootstrap, "wxstream-tail")
    show: Callable[[TopicRecord], str] = format_json if plan.as_json else format_line
    try:
        partitions = partitions_of(consumer, plan.spec.name)
        if not partitions:
            raise DataToolError(f"topic {plan.spec.name} does not exist on {bootstrap}; `wxstream up` creates it")
        spans = spans_from(consumer, partitions, None if plan.from_beginning else plan.since.since_ms)
        if plan.last is not None:
            per_partition = (_last_matching(consumer, plan, tp, span, plan.last) for tp, span in spans.items())
            for record in newest(per_partition, plan.last):
                print(show(record), file=out, flush=True)
            starts = {tp: span.stop for tp, span in spans.items()}
        else:
            starts = {tp: span.start for tp, span in spans.items()}
        stops = None if plan.follow else {tp: span.stop for tp, span in spans.items()}
        for raw in read(consumer, starts, stops):
            record = topic_record(plan.spec, raw)
            if plan.keep(record):
                print(show(record), file=out, flush=True)
    finally:
        consumer.close()
    return 0
