"""`wxstream topics`, `tail` and `replay` against the real embedded broker, and replay
through the whole pipeline: within the dedupe TTL nothing happens twice; past it, the
same messages get the same replies again (same reply ids, no model call)."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Iterator

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from app.datatools.arguments import add_replay_arguments, add_tail_arguments, add_topics_arguments
from app.datatools.replay import run_replay
from app.datatools.tail import run_tail
from app.datatools.topics import run_topics
from app.embedded.broker import start_broker
from app.embedded.process import free_port
from app.ingress.publisher import RawEventPublisher
from app.kafka_admin import ensure_topics
from app.settings import Settings
from app.topics import CLEAN_EVENTS, RAW_EVENTS, REPLIES, RawEvent
from tests.integration.kafka_helpers import end_offsets, publish_all, raw_text_event, read_topic

pytestmark = pytest.mark.integration

COMMANDS = {
    "topics": (add_topics_arguments, run_topics),
    "tail": (add_tail_arguments, run_tail),
    "replay": (add_replay_arguments, run_replay),
}
HOUR_MS = 3_600_000
DEDUPE_TTL_S = 10.0


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    @property
    def json_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.lines]


def wxstream(settings: Settings, command: str, *argv: str) -> Result:
    """Run a data tool in this process, as `wxstream COMMAND ARGV...` would."""
    add, run = COMMANDS[command]
    parser = argparse.ArgumentParser(prog=f"wxstream {command}")
    add(parser)
    out, err = io.StringIO(), io.StringIO()
    code = run(settings, parser.parse_args(argv), out, err)
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def broker(stack_settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """The embedded broker alone, with wxstream's topics; settings that point at it."""
    proc, bootstrap = start_broker(tmp_path / "logs")
    try:
        settings = replace(stack_settings, kafka_url=bootstrap, kafka_one_record_batches=True)
        ensure_topics(settings, bootstrap)
        yield settings
    finally:
        proc.stop()


def produce(settings: Settings, events: list[RawEvent], *, timestamp_ms: int | None = None) -> None:
    """Write raw events keyed by user as the ingress does, optionally back-dated."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_url, batch_size=1, acks="all")
    try:
        for event in events:
            key = f"{event.account}:{event.openid}".encode()
            producer.send(RAW_EVENTS.name, key=key, value=event.dumps(), timestamp_ms=timestamp_ms).get(10)
    finally:
        producer.close()


def raw_records(settings: Settings) -> list:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_url, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(RAW_EVENTS.name, p) for p in sorted(consumer.partitions_for_topic(RAW_EVENTS.name))]
        ends = consumer.end_offsets(partitions)
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records = []
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def events(account: str, users: list[str], first_msg_id: int, count: int) -> list[RawEvent]:
    return [raw_text_event(account, users[i % len(users)], first_msg_id + i, f"hello {first_msg_id + i}") for i in range(count)]


def test_topics_lists_offsets_counts_and_a_groups_lag(broker):
    produce(broker, events("demo", ["o_a", "o_b", "o_c"], 1, 12))
    group = KafkaConsumer(bootstrap_servers=broker.kafka_url, group_id="analytics", enable_auto_commit=False)
    try:
        group.commit({TopicPartition(RAW_EVENTS.name, 0): OffsetAndMetadata(1, "", -1)})
    finally:
        group.close()

    listed = wxstream(broker, "topics", "--group", "analytics", "--json")
    assert listed.code == 0, listed.err
    data = json.loads(listed.out)
    assert (data["group"], data["bootstrap"]) == ("analytics", broker.kafka_url)
    by_name = {topic["name"]: topic for topic in data["topics"]}
    raw = by_name[RAW_EVENTS.name]
    assert list(by_name)[0] == RAW_EVENTS.name and len(by_name) == 5
    assert raw["messages"] == 12 and all(topic["messages"] == 0 for topic in data["topics"][1:])
    p0, p1 = raw["partitions"]
    assert p0["begin"] == 0 and p0["end"] + p1["end"] == 12
    assert (p0["committed"], p0["lag"]) == (1, p0["end"] - 1)
    assert (p1["committed"], p1["lag"]) == (None, None)
    assert raw["lag"] == p0["end"] - 1

    table = wxstream(broker, "topics", "describe", "raw")  # the worker's group: nothing committed here
    assert table.code == 0
    assert table.lines[:2] == [
        "consumer group: wxstream",
        f"{RAW_EVENTS.name} (raw): 2 partitions, 12 messages, nothing committed by wxstream",
    ]
    assert json.loads(wxstream(broker, "topics", "describe", CLEAN_EVENTS.name, "--json").out)["topics"][0]["alias"] == "clean"

    missing = wxstream(broker, "topics", "describe", "wxstream.nothing.v1")
    assert missing.code == 1 and "no topic wxstream.nothing.v1" in missing.err


def test_tail_prints_the_last_records_filtered(broker):
    produce(broker, events("shop", ["o_s"], 1, 2))
    produce(broker, events("demo", ["o_a", "o_b"], 100, 250))  # more than a first step back from the end
    bad = KafkaProducer(bootstrap_servers=broker.kafka_url, batch_size=1)
    bad.send(RAW_EVENTS.name, key=b"demo:o_a", value=b"not json").get(10)
    bad.close()

    last = wxstream(broker, "tail", "raw", "-n", "3", "--no-follow")
    assert last.code == 0, last.err
    assert len(last.lines) == 3
    assert sorted(line.split()[-1] for line in last.lines[:2]) == ["348'", "349'"]  # the same ms, maybe
    assert last.lines[2].split()[3:5] == ["demo:o_a", "undecodable"]

    shop = wxstream(broker, "tail", "raw", "-n", "5", "--account", "shop", "--no-follow", "--json")
    assert [line["value"]["fields"]["Content"] for line in shop.json_lines] == ["hello 1", "hello 2"]
    assert {line["key"] for line in shop.json_lines} == {"shop:o_s"}

    one_user = wxstream(broker, "tail", RAW_EVENTS.name, "--from-beginning", "--user", "o_b", "--type", "text", "--no-follow")
    assert len(one_user.lines) == 125 and all(" demo:o_b  text  " in line for line in one_user.lines)

    assert wxstream(broker, "tail", "clean", "--no-follow").lines == []
    unknown = wxstream(broker, "tail", "rawz", "--no-follow")
    assert unknown.code == 2 and "unknown topic 'rawz'" in unknown.err


def test_tail_since_starts_at_a_time(broker):
    now_ms = int(time.time() * 1000)
    produce(broker, events("demo", ["o_old"], 1, 3), timestamp_ms=now_ms - 2 * HOUR_MS)
    produce(broker, events("demo", ["o_new"], 10, 2))

    recent = wxstream(broker, "tail", "raw", "--since", "1h", "--no-follow")
    assert [line.split()[3] for line in recent.lines] == ["demo:o_new", "demo:o_new"]
    since_iso = datetime.fromtimestamp((now_ms - 3 * HOUR_MS) / 1000).isoformat(timespec="minutes")
    assert len(wxstream(broker, "tail", "raw", "--since", since_iso, "--no-follow").lines) == 5
    bad = wxstream(broker, "tail", "raw", "--since", "yesterday")
    assert bad.code == 2 and "duration back from now" in bad.err


def test_replay_reproduces_a_time_range_unchanged(broker):
    now_ms = int(time.time() * 1000)
    produce(broker, events("shop", ["o_1", "o_2"], 1, 4), timestamp_ms=now_ms - 3 * HOUR_MS)
    produce(broker, events("shop", ["o_1", "o_2"], 10, 6), timestamp_ms=now_ms - 2 * HOUR_MS)
    produce(broker, events("demo", ["o_3"], 20, 3), timestamp_ms=now_ms - 2 * HOUR_MS)
    produce(broker, events("shop", ["o_1"], 30, 2))
    before = raw_records(broker)

    dry = wxstream(broker, "replay", "--since", "150m", "--until", "90m", "--dry-run")
    assert dry.code == 0, dry.err
    assert "9 events selected" in dry.lines[0]
    assert [row.split() for row in dry.lines[2:4]] == [["demo", "text", "3"], ["shop", "text", "6"]]
    assert dry.lines[-1] == "replay: dry run, nothing produced"
    assert len(raw_records(broker)) == len(before)

    done = wxstream(broker, "replay", "--since", "150m", "--until", "90m", "--account", "shop")
    assert done.code == 0, done.err
    assert done.lines[-1] == f"replay: 6 of 6 events produced to {RAW_EVENTS.name} (acks=all)"
    after = raw_records(broker)
    replayed = [r for r in after if (r.partition, r.offset) not in {(b.partition, b.offset) for b in before}]
    originals = [r for r in before if r.timestamp == now_ms - 2 * HOUR_MS and r.key.startswith(b"shop:")]
    assert sorted((r.partition, r.key, r.value) for r in replayed) == sorted((r.partition, r.key, r.value) for r in originals)
    assert all(r.timestamp >= now_ms for r in replayed)  # new records: a later replay of that range does not see them


def test_tail_follows_through_the_cli_until_ctrl_c(broker, tmp_path):
    produce(broker, events("demo", ["o_f"], 1, 1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WXSTREAM_")}
    env.update(WXSTREAM_KAFKA_URL=broker.kafka_url, WXSTREAM_DATA_DIR=str(tmp_path / "cli"))
    tail = subprocess.Popen(
        [sys.executable, "-m", "app", "tail", "raw", "-n", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert "'hello 1'" in tail.stdout.readline()  # the last record: it is reading
        produce(broker, events("demo", ["o_f"], 2, 1))
        assert "'hello 2'" in tail.stdout.readline()  # followed
        tail.send_signal(signal.SIGINT)
        assert tail.wait(timeout=30) == 0, tail.stderr.read()
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.wait()


def test_no_broker_is_a_clear_error(stack_settings):
    settings = replace(stack_settings, kafka_url=f"127.0.0.1:{free_port()}")
    result = wxstream(settings, "tail", "raw")
    assert result.code == 1 and "no Kafka broker answers at" in result.err


def _values(records) -> list[dict]:
    return [json.loads(r.value) for r in records]


async def test_replay_through_the_pipeline_answers_no_message_twice(start_stack):
    stack = start_stack(dedupe_ttl_s=DEDUPE_TTL_S)
    settings = stack.child_settings
    bootstrap = settings.kafka_url
    publisher = RawEventPublisher(replace(settings, produce_timeout_s=30), bootstrap)
    await publisher.start()
    try:
        originals = events("demo", ["o_r1", "o_r2"], 1, 4)
        await publish_all(publisher, originals)
        published_at = time.time()
        keys = {e.dedupe_key for e in originals}
        await read_topic(bootstrap, REPLIES.name, lambda r: keys <= {v["in_reply_to"] for v in _values(r)})

        # Within the dedupe TTL: the replayed events stop at the dedupe agent.
        replay_started = time.time()
        within_ttl = wxstream(settings, "replay", "--since", "10m")
        assert within_ttl.lines[-1] == f"replay: 4 of 4 events produced to {RAW_EVENTS.name} (acks=all)"
        sentinels = events("demo", ["o_r1", "o_r2"], 100, 2)  # one per user, after that user's replays
        await publish_all(publisher, sentinels)
        wanted = keys | {e.dedupe_key for e in sentinels}
        await read_topic(bootstrap, REPLIES.name, lambda r: wanted <= {v["in_reply_to"] for v in _values(r)})
        assert await end_offsets(bootstrap, CLEAN_EVENTS.name) == len(wanted)
        assert await end_offsets(bootstrap, REPLIES.name) == len(wanted)

        deadline = time.monotonic() + 60  # `wxstream topics` sees the worker's group catch up
        while True:
            raw = json.loads(wxstream(settings, "topics", "describe", "raw", "--json").out)["topics"][0]
            if raw["messages"] == 10 and raw["lag"] == 0:
                break
            assert time.monotonic() < deadline, raw
            await asyncio.sleep(1)

        # Past the TTL: the events pass dedupe again, and the answers come from the sessions.
        await asyncio.sleep(max(0.0, published_at + 2 * DEDUPE_TTL_S + 1 - time.time()))
        until = datetime.fromtimestamp(replay_started).isoformat()
        past_ttl = wxstream(settings, "replay", "--since", "10m", "--until", until)
        assert past_ttl.lines[-1] == f"replay: 4 of 4 events produced to {RAW_EVENTS.name} (acks=all)"
        replies = _values(await read_topic(bootstrap, REPLIES.name, lambda r: len(r) >= len(wanted) + 4, timeout=90))
        clean = _values(await read_topic(bootstrap, CLEAN_EVENTS.name, lambda r: len(r) >= len(wanted) + 4))
    finally:
        await publisher.stop()
    assert Counter(v["dedupe_key"] for v in clean) == Counter(wanted) + Counter(keys)  # data teams see repeats
    for event in originals:
        first, again = [r for r in replies if r["in_reply_to"] == event.dedupe_key]
        assert again["reply_id"] == first["reply_id"]
        assert (first["model"], again["model"]) == ("echo", "replay")  # no second model call, no second turn
        # the same answer (echo: the message's own text), after any replies owed from the user's mailbox
        assert again["text"].endswith(event.fields["Content"]) and first["text"].endswith(event.fields["Content"])
