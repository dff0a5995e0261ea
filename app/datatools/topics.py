"""`wxstream topics [describe NAME]`: wxstream's topics on the broker, with per partition
the first and next offsets, the message count, and a consumer group's committed offset
and lag (default group: the worker's).

Counts are `end - begin`: exact on these topics, which have no compaction and no
transactions. The embedded broker answers end offsets correctly only because every
wxstream producer writes one-record batches there (see README, "The embedded broker's
one known bug").
"""

from __future__ import annotations

import argparse
import json
from contextlib import ExitStack
from dataclasses import dataclass
from typing import IO, Any, Mapping

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient

from app.datatools.broker import DataToolError, find_bootstrap, open_admin, open_consumer, partitions_of
from app.datatools.command import datatool
from app.datatools.records import ALIASES, alias_of
from app.settings import Settings
from app.topics import TOPICS
from app.worker import APP_ID  # the worker's consumer group

__all__ = ("PartitionOffsets", "TopicOffsets", "format_table", "to_json", "run_topics")


@dataclass(frozen=True)
class PartitionOffsets:
    partition: int
    begin: int
    end: int
    committed: int | None  # the group's committed offset; None: it has none here

    @property
    def messages(self) -> int:
        return self.end - self.begin

    @property
    def lag(self) -> int | None:
        return None if self.committed is None else max(0, self.end - self.committed)


@dataclass(frozen=True)
class TopicOffsets:
    name: str
    partitions: tuple[PartitionOffsets, ...]  # empty: the topic does not exist

    @property
    def exists(self) -> bool:
        return bool(self.partitions)

    @property
    def messages(self) -> int:
        return sum(p.messages for p in self.partitions)

    @property
    def lag(self) -> int | None:
        """Total lag of the group, over the partitions where it committed; None: nowhere."""
        lags = [p.lag for p in self.partitions if p.lag is not None]
        return sum(lags) if lags else None


def _cell(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def format_table(topics: list[TopicOffsets], group: str) -> str:
    lines = [f"consumer group: {group}"]
    for topic in topics:
        title = f"{topic.name} ({alias_of(topic.name)})" if alias_of(topic.name) else topic.name
        if not topic.exists:
            lines.append(f"{title}: missing; `wxstream up` (or any wxstream producer) creates it")
            continue
        lag = f"lag {topic.lag:,}" if topic.lag is not None else f"nothing committed by {group}"
        count = len(topic.partitions)
        lines.append(f"{title}: {count} partition{'s' * (count != 1)}, {topic.messages:,} messages, {lag}")
        lines.append(f"  {'partition':>9} {'begin':>10} {'end':>10} {'messages':>10} {'committed':>10} {'lag':>8}")
        for p in topic.partitions:
            row = f"{p.partition:>9} {p.begin:>10,} {p.end:>10,} {p.messages:>10,}"
            lines.append(f"  {row} {_cell(p.committed):>10} {_cell(p.lag):>8}")
    return "\n".join(lines)


def to_json(topics: list[TopicOffsets], group: str, bootstrap: str) -> dict[str, Any]:
    return {
        "bootstrap": bootstrap,
        "group": group,
        "topics": [
            {
                "name": topic.name,
                "alias": alias_of(topic.name),
                "exists": topic.exists,
                "messages": topic.messages,
                "lag": topic.lag,
                "partitions": [
                    {
                        "partition": p.partition,
                        "begin": p.begin,
                        "end": p.end,
                        "messages": p.messages,
                        "committed": p.committed,
                        "lag": p.lag,
                    }
                    for p in topic.partitions
                ],
            }
            for topic in topics
        ],
    }


def _committed(admin: KafkaAdminClient, group: str) -> Mapping[TopicPartition, int]:
    offsets = admin.list_group_offsets(group).get(group, {})
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


def _offsets(consumer: KafkaConsumer, name: str, committed: Mapping[TopicPartition, int]) -> TopicOffsets:
    partitions = partitions_of(consumer, name)
    if not partitions:
        return TopicOffsets(name, ())
    begins = consumer.beginning_offsets(partitions)
    ends = consumer.end_offsets(partitions)
    return TopicOffsets(
        name,
        tuple(PartitionOffsets(tp.partition, begins[tp], ends[tp], committed.get(tp)) for tp in partitions),
    )


@datatool("topics")
def run_topics(settings: Settings, args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    group = args.group or APP_ID
    name = getattr(args, "name", None)
    names = [ALIASES[name].name if name in ALIASES else name] if name else [spec.name for spec in TOPICS]
    bootstrap = find_bootstrap(settings)
    with ExitStack() as clients:
        consumer = open_consumer(bootstrap, "wxstream-topics")
        clients.callback(consumer.close)
        admin = open_admin(bootstrap, "wxstream-topics")
        clients.callback(admin.close)
        committed = _committed(admin, group)
        topics = [_offsets(consumer, topic, committed) for topic in names]
    if name and not topics[0].exists:
        raise DataToolError(f"no topic {names[0]} on {bootstrap}; `wxstream topics` lists wxstream's")
    if args.json:
        print(json.dumps(to_json(topics, group, bootstrap), indent=2), file=out)
    else:
        print(format_table(topics, group), file=out)
    return 0
