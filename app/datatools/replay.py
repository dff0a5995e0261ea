"""`wxstream replay --since T [--until T]`: re-drive the raw events written in a time range
through the pipeline.

Each raw record written in the range (and matching the filters) is produced again to the
raw topic unchanged: same key, same partition, same value, so the same `dedupe_key`;
acks=all. The pipeline makes this idempotent (docs/data-teams.md says how far). Only what
was in the topic when the replay started is read, so a replay never reads its own output.
`--dry-run` only counts. Progress goes to stderr once a second, the summary to stdout.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO

from kafka import KafkaConsumer, KafkaProducer

from app.datatools.broker import (
    FLUSH_TIMEOUT_S,
    DataToolError,
    Produced,
    find_bootstrap,
    open_consumer,
    open_producer,
    partitions_of,
    read,
    spans_from,
    topic_record,
)
from app.datatools.command import Ticker, datatool
from app.datatools.records import RecordFilter, TopicRecord
from app.datatools.timerange import TimeRange, parse_range
from app.settings import Settings
from app.topics import RAW_EVENTS

__all__ = ("ReplayPlan", "ReplayTally", "plan_replay", "run_replay")

PROGRESS_EVERY_S = 1.0


@dataclass(frozen=True)
class ReplayPlan:
    range: TimeRange
    filter: RecordFilter
    dry_run: bool


def plan_replay(args: argparse.Namespace, now: float) -> ReplayPlan:
    return ReplayPlan(
        range=parse_range(args.since, args.until or "now", now),
        filter=RecordFilter(account=args.account, openid=args.openid, type=args.type),
        dry_run=args.dry_run,
    )


@dataclass
class ReplayTally(Produced):
    """What a replay read, picked and produced."""

    to_read: int = 0  # offsets in the range's spans
    read: int = 0
    undecodable: int = 0  # skipped: they would only be dead-lettered again
    selected: Counter[tuple[str, str]] = field(default_factory=Counter)  # (account, type) -> events

    def select(self, record: TopicRecord) -> None:
        self.selected[(record.account or "-", record.kind)] += 1

    @property
    def total(self) -> int:
        return sum(self.selected.values())

    def progress_line(self) -> str:
        return f"replay: read {self.read:,}/{self.to_read:,} records, {self.total:,} selected, {self.acked:,} produced"

    def table(self) -> str:
        if not self.selected:
            return "  (no events)"
        width = max(len("account"), *(len(account) for account, _ in self.selected))
        kinds = max(len("type"), *(len(kind) for _, kind in self.selected))
        rows = [f"  {'account':<{width}}  {'type':<{kinds}}  {'events':>8}"]
        for (account, kind), count in sorted(self.selected.items()):
            rows.append(f"  {account:<{width}}  {kind:<{kinds}}  {count:>8,}")
        return "\n".join(rows)


def _when(t: float | None) -> str:
    return datetime.fromtimestamp(t).isoformat(sep=" ", timespec="seconds") if t is not None else "-"


def summary(plan: ReplayPlan, tally: ReplayTally, *, interrupted: bool) -> str:
    skipped = f", {tally.undecodable:,} undecodable skipped" if tally.undecodable else ""
    lines = [
        f"replay: {RAW_EVENTS.name} from {_when(plan.range.since)} to {_when(plan.range.until)}: "
        f"{tally.read:,} records read, {tally.total:,} events selected{skipped}",
        tally.table(),
    ]
    if plan.dry_run:
        lines.append("replay: dry run, nothing produced")
    else:
        lines.append(f"replay: {tally.acked:,} of {tally.total:,} events produced to {RAW_EVENTS.name} (acks=all)")
    if tally.failed:
        lines.append(f"replay: {len(tally.failed):,} failed, first: {tally.failed[0]}")
    if interrupted:
        lines.append("replay: interrupted; running it again is safe")
    return "\n".join(lines)


def _replay(
    plan: ReplayPlan,
    tally: ReplayTally,
    consumer: KafkaConsumer,
    producer: KafkaProducer | None,
    bootstrap: str,
    err: IO[str],
) -> None:
    partitions = partitions_of(consumer, RAW_EVENTS.name)
    if not partitions:
        raise DataToolError(f"topic {RAW_EVENTS.name} does not exist on {bootstrap}; nothing to replay")
    spans = spans_from(consumer, partitions, plan.range.since_ms)
    tally.to_read = sum(span.stop - span.start for span in spans.values())
    ticker = Ticker(PROGRESS_EVERY_S)
    stops = {tp: span.stop for tp, span in spans.items()}
    for raw in read(consumer, {tp: span.start for tp, span in spans.items()}, stops):
        tally.read += 1
        if ticker.due():
            print(tally.progress_line(), file=err, flush=True)
        if not plan.range.contains_ms(raw.timestamp):
            continue
        record = topic_record(RAW_EVENTS, raw)
        if record.problem is not None:
            tally.undecodable += 1
            continue
        if not plan.filter.matches(record):
            continue
        tally.select(record)
        if producer is not None:
            tally.track(producer.send(RAW_EVENTS.name, key=raw.key, value=raw.value, partition=raw.partition))


@datatool("replay")
def run_replay(settings: Settings, args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    plan = plan_replay(args, time.time())
    bootstrap = find_bootstrap(settings)
    tally = ReplayTally()
    interrupted = False
    with ExitStack() as clients:
        consumer = open_consumer(bootstrap, "wxstream-replay")
        clients.callback(consumer.close)
        producer = None if plan.dry_run else open_producer(settings, bootstrap, "wxstream-replay")
        if producer is not None:
            clients.callback(producer.close)
            # Runs before close (last in, first out): wait for what was sent, also after Ctrl-C.
            clients.callback(producer.flush, timeout=FLUSH_TIMEOUT_S)
        try:
            _replay(plan, tally, consumer, producer, bootstrap, err)
        except KeyboardInterrupt:
            interrupted = True
    print(summary(plan, tally, interrupted=interrupted), file=out)
    if interrupted:
        return 130
    return 1 if tally.failed or (not plan.dry_run and tally.acked < tally.total) else 0
