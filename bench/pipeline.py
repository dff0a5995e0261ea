"""Benchmark: events/s through the worker's pipeline (dedupe, rate limits, session, model
request) against a bare Faust pass-through, both on the real embedded broker.

pipeline     `wxstream worker` as `wxstream up` runs it (settings from `Settings.to_env()`),
             one process, the echo model on the embedded tritonserver: per event the
             dedupe agent decodes the raw record, checks and marks the `seen` table,
             publishes the clean event and hands it to the conversation, which applies
             the rate limits, reads and updates the session, renders the prompt, calls
             the model and publishes the reply. Two stages are timed: the clean topic
             (dedupe, which waits while the conversation has its fill of messages) and
             the replies topic (everything).
pass-through bench/passthrough.py: one Faust agent that forwards each raw record unchanged
             to another topic, with the worker's broker, store and producer settings.
state floor  the same pass-through, counting each record's key in `--state-tables` Faust
             tables (default 3: as many as the pieces of state the pipeline keeps per
             event, dedupe's seen keys, the user's rate window and the session) before it
             forwards it. Not a goal: it shows what Faust itself costs per event for that
             much state, which no pipeline built on Faust tables can beat.

Each round starts a fresh broker and preloads it with `--events` raw text events (`--users`
distinct users, text messages, all different, round-robin over the users as live traffic
would interleave them) of an account whose rate limits nothing reaches; only then are the
consumers started, one after the other, in an order that alternates round by round.
The timing source is the Kafka timestamps of the output records (the time the producer
created them), so process start-up, group join and table recovery are left out: a stage's
time runs from the first record the consumer wrote to the last record of that stage
(for the replies stage, from the first clean event). events/s = events / that time; each
figure is the median of its rounds. Goal: pipeline (replies) >= 50% of the pass-through.

With the embedded broker every producer writes one-record batches (README: "The embedded
broker's one known bug"), packed many to a produce request, which caps what one producer
can write. The preload measures that cap: one aiokafka producer with the worker's
producer settings, producing only.
`--no-workaround` runs everything with multi-record batches (WXSTREAM_KAFKA_ONE_RECORD_BATCHES=0),
what a real Kafka cluster allows; table recovery is unreliable on the embedded broker then,
which does not matter here (every round starts with empty tables). Results go to
bench/results/pipeline.json (or pipeline-no-workaround.json).

    make bench
    .venv/bin/python -m bench.pipeline [--events 3000] [--users 300] [--rounds 3] [--no-workaround]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from app.embedded.broker import start_broker
from app.embedded.process import ManagedProcess, free_port
from app.embedded.triton import start_triton
from app.kafka_admin import create_topics, ensure_topics
from app.record_batches import pack_one_record_batches
from app.settings import PRODUCER_BATCH_BYTES, Settings
from app.topics import CLEAN_EVENTS, RAW_EVENTS, REPLIES, RawEvent, user_key
from app.worker import APP_ID
from bench import description
from bench.timing import cpu_seconds, environment, write_results

RESULTS_DIR = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "bench"
PASS, STATE, PIPE = "pass-through", "state floor", "pipeline"
CASES = (PASS, STATE, PIPE)
SINK = "bench.passthrough.v1"  # the pass-through's output topic
STATE_SINK = "bench.state-floor.v1"
STATE_APP_ID = "bench-state-floor"  # its own consumer group and changelog topics
GOAL_RATIO = 0.50
POLL_S = 0.25  # progress poll (end offsets, CPU) while a case runs
QUIET_S = 1.0  # multi-record batches: end offsets are unreliable, a topic is read once they stop moving


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("WXSTREAM_")}


def _accounts_toml(path: Path) -> None:
    """One plain-mode account with limits no run reaches, so that every message gets to
    the model."""
    path.write_text(
        f"[accounts.{ACCOUNT}]\n"
        f'token = "{secrets.token_hex(16)}"\n'
        f'appid = "wx{secrets.token_hex(8)}"\n'
        'mode = "plain"\n'
        'original_id = "gh_3f9a1c2b7d4e"\n'
        "user_per_minute = 1000000\n"
        "account_per_second = 1000000\n",
        encoding="utf-8",
    )


def make_events(round_no: int, users: int, per_user: int) -> list[RawEvent]:
    """`users` x `per_user` text messages, each with its own text (so no answer comes from
    the answer cache), round-robin over the users; users are new in every round."""
    now = time.time()
    events = []
    for m in range(per_user):
        for u in range(users):
            openid = f"oBench{round_no:02d}-{u:06d}-x9QrStUvWxYz"[:28]
            msg_id = (round_no * 1_000_000 + u) * 100 + m
            text = f"第{m + 1}个问题 (user {u}): 明天上午北京到上海的高铁还有二等座吗？"
            events.append(
                RawEvent(
                    account=ACCOUNT,
                    openid=openid,
                    msg_type="text",
                    dedupe_key=f"msg:{msg_id}",
                    fields={
                        "ToUserName": "gh_3f9a1c2b7d4e",
                        "FromUserName": openid,
                        "CreateTime": str(int(now) + m),
                        "MsgType": "text",
                        "Content": text,
                        "MsgId": str(msg_id),
                    },
                    received_at=now,
                )
            )
    return events


# -- processes and their CPU -------------------------------------------------------------


def _group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[2]) == pgid:
                pids.append(int(entry.name))
    return pids


class CpuSamples:
    """CPU seconds of named process groups, sampled over time, to tell how many cores each
    used in a time window."""

    def __init__(self, groups: dict[str, int]) -> None:
        self.members = {name: _group_pids(pgid) or [pgid] for name, pgid in groups.items()}
        self.samples: list[tuple[float, dict[str, float]]] = []

    def sample(self) -> None:
        # A member that is gone adds nothing.
        cpu = {name: sum(cpu_seconds(pid) or 0.0 for pid in pids) for name, pids in self.members.items()}
        cpu["bench"] = time.process_time()
        self.samples.append((time.time(), cpu))

    def _at(self, when: float) -> dict[str, float]:
        """Cumulative CPU seconds at `when`, interpolated between the samples around it."""
        for (t0, c0), (t1, c1) in zip(self.samples, self.samples[1:]):
            if t0 <= when <= t1:
                f = (when - t0) / (t1 - t0) if t1 > t0 else 0.0
                return {name: c0[name] + f * (c1[name] - c0[name]) for name in c1}
        raise ValueError("outside the sampled time")

    def used(self, start: float, end: float) -> dict[str, float] | None:
        """CPU seconds each group used from `start` to `end` (unix times)."""
        try:
            a, b = self._at(start), self._at(end)
        except ValueError:
            return None
        return {name: b[name] - a[name] for name in b}


# -- topics --------------------------------------------------------------------------------


async def preload(settings: Settings, events: list[RawEvent]) -> float:
    """Produce the events to the raw topic, keyed and encoded as the ingress does, with one
    producer configured as the worker's (batch size, packed one-record batches, linger,
    acks=all); returns records/s.
    The producer is kept busy, as the pass-through's is, so this is what one producer
    can write: with one-record batches, the cap discussed above."""
    assert settings.kafka_url
    records = [(user_key(e.account, e.openid).encode("utf-8"), e.dumps()) for e in events]
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_url,
        client_id="wxstream-bench-preload",
        acks="all",
        enable_idempotence=False,
        linger_ms=settings.kafka_linger_ms,
        max_batch_size=PRODUCER_BATCH_BYTES,
        request_timeout_ms=120_000,
    )
    if settings.one_record_batches:
        pack_one_record_batches(producer)
    await producer.start()
    try:
        started = time.perf_counter()
        acks = [await producer.send(RAW_EVENTS.name, key=key, value=value) for key, value in records]
        await asyncio.gather(*acks)
        return len(records) / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def read_all(bootstrap: str, topic: str, partitions: int, enough: int, timeout: float = 60.0) -> list[Any]:
    """Every record of `topic` from the beginning; stops once at least `enough` are read and
    nothing more comes, or after `timeout`."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="wxstream-bench-reader", max_poll_records=5000
    )
    await consumer.start()
    records: list[Any] = []
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=300 if len(records) >= enough else 1000)
            if not batches and len(records) >= enough:
                break
            for batch in batches.values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def end_offsets(consumer: AIOKafkaConsumer, topic: str, partitions: int) -> int:
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    return sum((await consumer.end_offsets(tps)).values())


async def wait_for_output(
    settings: Settings,
    topic: str,
    expected: int,
    proc: ManagedProcess,
    cpu: CpuSamples,
    timeout: float,
) -> None:
    """Poll until `topic` holds `expected` records. The broker's end offsets are exact with
    one-record batches; otherwise the topic is read whenever they stop moving."""
    assert settings.kafka_url
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_url, client_id="wxstream-bench-watch")
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        last, still_since = -1, time.monotonic()
        while True:
            cpu.sample()
            if not proc.alive:
                raise RuntimeError(f"{proc.name} exited with rc={proc.returncode()}{proc.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: fewer than {expected} records after {timeout:.0f}s{proc.log_tail()}")
            end = await end_offsets(consumer, topic, settings.partitions)
            if settings.one_record_batches:
                if end >= expected:
                    return
            elif end != last:
                last, still_since = end, time.monotonic()
            elif end > 0 and time.monotonic() - still_since >= QUIET_S:
                if len(await read_all(settings.kafka_url, topic, settings.partitions, expected, 10)) >= expected:
                    return
                still_since = time.monotonic()
            await asyncio.sleep(POLL_S)
    finally:
        await consumer.stop()


def _span(first_ms: int, last_ms: int, events: int) -> dict[str, float]:
    seconds = max(last_ms - first_ms, 1) / 1000
    return {"seconds": seconds, "events_per_s": events / seconds}


# -- one round -------------------------------------------------------------------------------


class Round:
    """A fresh broker with the raw topic preloaded; the cases run one after the other on it."""

    def __init__(self, bench: "Bench", round_no: int) -> None:
        self.bench = bench
        self.round_no = round_no
        self.work = bench.work / f"round-{round_no}"
        self.broker: ManagedProcess | None = None
        self.settings: Settings | None = None
        self.events: list[RawEvent] = []

    async def start(self) -> float:
        b = self.bench
        self.broker, kafka_url = start_broker(self.work / "logs")
        self.settings = replace(
            b.settings,
            data_dir=self.work / "data",
            kafka_url=kafka_url,
            triton_url=b.triton_url,
            web_port=free_port(b.settings.web_host),
        )
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        ensure_topics(self.settings, kafka_url)
        create_topics(kafka_url, (SINK, STATE_SINK), self.settings.partitions)
        self.events = make_events(self.round_no, b.args.users, b.args.events // b.args.users)
        return await preload(self.settings, self.events)

    def stop(self) -> None:
        if self.broker is not None:
            self.broker.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    def _spawn(self, name: str, argv: list[str]) -> ManagedProcess:
        assert self.settings is not None
        env = {**_clean_env(), **self.settings.to_env(), "PYTHONUNBUFFERED": "1"}
        return ManagedProcess(name, [sys.executable, *argv], self.work / "logs" / f"{name}.log", env=env, cwd=ROOT)

    async def run(self, case: str) -> dict[str, Any]:
        assert self.settings is not None and self.broker is not None
        s, n = self.settings, len(self.events)
        if case == PASS:
            proc, watch = self._spawn("passthrough", ["-m", "bench.passthrough", "--sink", SINK]), SINK
        elif case == STATE:
            tables = str(self.bench.args.state_tables)
            argv = ["-m", "bench.passthrough", "--sink", STATE_SINK, "--app-id", STATE_APP_ID, "--tables", tables]
            proc, watch = self._spawn("state-floor", argv), STATE_SINK
        else:
            proc, watch = self._spawn("worker", ["-m", "app", "worker"]), REPLIES.name
        spawned = time.time()
        proc.start()
        try:
            groups = {"broker": self.broker.pid or 0, "consumer": proc.pid or 0}
            if case == PIPE:
                groups["triton"] = self.bench.triton.pid or 0
            cpu = CpuSamples(groups)
            await wait_for_output(s, watch, n, proc, cpu, timeout=self.bench.args.case_timeout)
            cpu.sample()
        finally:
            proc.kill()  # its state is thrown away with the round: no need for a clean stop
            proc.stop()
        assert s.kafka_url
        if case != PIPE:
            out = await read_all(s.kafka_url, watch, s.partitions, n)
            _check_passthrough(self.events, out)
            first, last = min(r.timestamp for r in out), max(r.timestamp for r in out)
            stages = {"forwarded": _span(first, last, n)}
            produced = 1.0 if case == PASS else await self._records_written_per_event(n, f"{STATE_APP_ID}-")
        else:
            clean = await read_all(s.kafka_url, CLEAN_EVENTS.name, s.partitions, n)
            replies = await read_all(s.kafka_url, REPLIES.name, s.partitions, n)
            _check_pipeline(self.events, clean, replies, s.model_name)
            first = min(r.timestamp for r in clean)
            last = max(r.timestamp for r in replies)
            stages = {
                "clean": _span(first, max(r.timestamp for r in clean), n),
                "replies": _span(first, last, n),
            }
            produced = await self._records_written_per_event(len(clean) + len(replies), f"{APP_ID}-")
        window = (last - first) / 1000
        used = cpu.used(first / 1000, last / 1000)
        return {
            "case": case,
            "round": self.round_no,
            "events": n,
            "stages": stages,
            "startup_s": first / 1000 - spawned,
            # CPU of each process during the timed window (first to last output record)
            "cpu_cores": {name: c / window for name, c in used.items()} if used else None,
            "cpu_ms_per_event": {name: 1000 * c / n for name, c in used.items()} if used else None,
            "records_written_per_event": produced,
        }

    async def _records_written_per_event(self, outputs: int, changelogs_of: str) -> float | None:
        """Records a case wrote per event: its outputs and the changelogs of its tables, the
        topics named `<changelogs_of>...-changelog`. From end offsets, which the embedded
        broker gets right for one-record batches only: None otherwise."""
        assert self.settings is not None and self.settings.kafka_url
        if not self.settings.one_record_batches:
            return None
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_url, client_id="wxstream-bench-count")
        await consumer.start()
        try:
            topics = await consumer.topics()
            changelogs = [t for t in topics if t.startswith(changelogs_of) and t.endswith("-changelog")]
            total = outputs
            for topic in changelogs:
                total += await end_offsets(consumer, topic, self.settings.partitions)
            return total / len(self.events)
        finally:
            await consumer.stop()


def _check_passthrough(events: list[RawEvent], out: list[Any]) -> None:
    sent = Counter((user_key(e.account, e.openid).encode("utf-8"), e.dumps()) for e in events)
    got = Counter((r.key, r.value) for r in out)
    if got != sent:
        raise RuntimeError(f"pass-through: {len(out)} records out, not the {len(events)} records in, unchanged")


def _check_pipeline(events: list[RawEvent], clean: list[Any], replies: list[Any], model: str) -> None:
    """Every event once on the clean topic and answered once, by the model, with its text."""
    texts = {e.dedupe_key: e.fields["Content"] for e in events}
    keys = Counter(json.loads(r.value)["dedupe_key"] for r in clean)
    if len(clean) != len(events) or set(keys) != set(texts):
        raise RuntimeError(f"clean topic: {len(clean)} records for {len(events)} events, {len(keys)} distinct")
    answered: Counter[str] = Counter()
    for record in replies:
        reply = json.loads(record.value)
        if reply["model"] != model or reply["text"] != texts.get(reply["in_reply_to"]):
            raise RuntimeError(f"a reply that is not the {model} model's answer: {reply}")
        answered[reply["in_reply_to"]] += 1
    if len(replies) != len(events) or set(answered) != set(texts):
        raise RuntimeError(f"replies topic: {len(replies)} replies for {len(events)} events, {len(answered)} distinct")


# -- the whole run -------------------------------------------------------------------------


class Bench:
    def __init__(self, work: Path, args: argparse.Namespace) -> None:
        self.work = work
        self.args = args
        accounts = work / "accounts.toml"
        _accounts_toml(accounts)
        base = Settings.from_env(_clean_env())
        self.settings = replace(
            base,
            accounts=accounts,
            partitions=args.partitions or base.partitions,
            # What `wxstream up` sets with the embedded broker, unless --no-workaround.
            kafka_one_record_batches=not args.no_workaround,
            # The fastest model: what is measured is wxstream, not the model.
            model_name="echo",
            model_candidate=None,
            triton_load_models=None,
            ingress_port=0,
            # No ingress here gives verdicts on passive replies: keep the sender waiting for
            # them rather than deferring replies to an API this benchmark does not run.
            outbound_verdict_timeout_s=3600.0,
        )
        self.triton: ManagedProcess | None = None
        self.triton_url: str | None = None

    def start(self) -> None:
        s = self.settings
        self.triton, self.triton_url = start_triton(
            s.triton_models, self.work, self.work / "logs", models=s.triton_model_names
        )

    def stop(self) -> None:
        if self.triton is not None:
            self.triton.stop()

    async def run(self, progress: Callable[[str], None]) -> tuple[list[float], list[dict[str, Any]]]:
        caps: list[float] = []
        runs: list[dict[str, Any]] = []
        for r in range(self.args.rounds):
            one = Round(self, r)
            try:
                caps.append(await one.start())
                progress(
                    f"round {r + 1}/{self.args.rounds}: preloaded {len(one.events):,} events at {caps[-1]:,.0f} records/s"
                )
                for case in CASES if r % 2 == 0 else CASES[::-1]:
                    result = await one.run(case)
                    runs.append(result)
                    figures = ", ".join(f"{k} {v['events_per_s']:,.0f}/s" for k, v in result["stages"].items())
                    progress(f"round {r + 1}/{self.args.rounds}: {case:<12} {figures}")
            finally:
                one.stop()
        return caps, runs


# -- report ----------------------------------------------------------------------------------


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


STAGES = (
    (PASS, "forwarded", "pass-through: raw -> out (bare Faust)"),
    (STATE, "forwarded", "state floor: pass-through + tables"),
    (PIPE, "clean", "pipeline: dedupe -> clean topic"),
    (PIPE, "replies", "pipeline: ... -> model -> replies"),
)
PROCESSES = ("consumer", "broker", "triton")


def summarize(caps: list[float], runs: list[dict[str, Any]], state_tables: int) -> dict[str, Any]:
    stages: dict[str, dict[str, Any]] = {}
    for case, stage, _ in STAGES:
        rates = [r["stages"][stage]["events_per_s"] for r in runs if r["case"] == case]
        stages[f"{case}:{stage}"] = {
            "events_per_s": statistics.median(rates),
            "seconds": statistics.median(r["stages"][stage]["seconds"] for r in runs if r["case"] == case),
            "rounds_events_per_s": rates,
        }
    cpu: dict[str, dict[str, Any]] = {}
    for case in CASES:
        mine = [r for r in runs if r["case"] == case]
        names = [n for n in (*PROCESSES, "bench") if case == PIPE or n != "triton"]
        cpu[case] = {
            "ms_per_event": {n: _median([(r["cpu_ms_per_event"] or {}).get(n) for r in mine]) for n in names},
            "cores": {n: _median([(r["cpu_cores"] or {}).get(n) for r in mine]) for n in names},
            "records_written_per_event": _median([r["records_written_per_event"] for r in mine]),
        }
    base = stages[f"{PASS}:forwarded"]["events_per_s"]
    floor = stages[f"{STATE}:forwarded"]["events_per_s"]
    full = stages[f"{PIPE}:replies"]["events_per_s"]
    by_round: dict[int, dict[str, Any]] = {}
    for r in runs:
        by_round.setdefault(r["round"], {})[r["case"]] = r
    cap = statistics.median(caps)
    return {
        "produce_cap_records_per_s": cap,
        "produce_cap_rounds": caps,
        "stages": stages,
        "cpu": cpu,
        "ratio": full / base,
        "ratio_clean": stages[f"{PIPE}:clean"]["events_per_s"] / base,
        "state_tables": state_tables,
        "ratio_state_floor": floor / base,
        "ratio_to_state_floor": full / floor,
        "round_ratios": [
            r[PIPE]["stages"]["replies"]["events_per_s"] / r[PASS]["stages"]["forwarded"]["events_per_s"]
            for r in by_round.values()
        ],
        "passthrough_vs_cap": base / cap,
        "goal": GOAL_RATIO,
        "pass": full / base >= GOAL_RATIO,
    }


def _num(value: float | None, width: int, digits: int) -> str:
    return f"{value:>{width},.{digits}f}" if value is not None else f"{'-':>{width}}"


def report(summary: dict[str, Any], args: argparse.Namespace, settings: Settings) -> str:
    batches = (
        "one-record batches (the embedded broker's workaround)"
        if settings.one_record_batches
        else "multi-record batches (--no-workaround)"
    )
    lines = [
        "pipeline: raw events/s through one worker, embedded broker, echo model on the embedded tritonserver",
        f"  {args.events:,} text events ({args.users:,} users x {args.events // args.users} messages, every text different),",
        f"  preloaded before the consumer starts; {settings.partitions} partitions, {batches},",
        f"  acks=all, linger {settings.kafka_linger_ms} ms, fetch wait {settings.kafka_fetch_max_wait_ms} ms; {args.rounds} round{'s' if args.rounds != 1 else ''},",
        "  each on a fresh broker, the cases in an order that alternates round by round; the median round is shown",
        f"  state floor: the pass-through counting each key in {summary['state_tables']} Faust tables first",
        "  (not a goal: what Faust itself costs per event for as much state as the pipeline keeps)",
        "  time: Kafka timestamps of the output records, from the first record the consumer wrote to the",
        "  stage's last record (start-up, group join and table recovery excluded)",
        f"  NOTE: broker, tritonserver, the Faust process and this one share the machine's {os.cpu_count()} cores",
        "",
        f"  {'case: stage':<38} {'events':>7} {'seconds':>8} {'events/s':>9}  rounds (events/s)",
    ]
    for case, stage, label in STAGES:
        row = summary["stages"][f"{case}:{stage}"]
        rounds = " ".join(f"{v:,.0f}" for v in row["rounds_events_per_s"])
        lines.append(f"  {label:<38} {args.events:>7,} {row['seconds']:>8.2f} {row['events_per_s']:>9,.0f}  {rounds}")
    lines += [
        "",
        "  CPU while timed (first to last output record)   consumer = the Faust process",
        f"  {'':<14} {'ms CPU per event':^30}   {'cores used':^26}  records written",
        f"  {'':<14} {'consumer':>9} {'broker':>9} {'triton':>9}   {'consumer':>8} {'broker':>8} {'triton':>8}  per event",
    ]
    for case in CASES:
        c = summary["cpu"][case]
        ms = " ".join(_num(c["ms_per_event"].get(n), 9, 2) for n in PROCESSES)
        cores = " ".join(_num(c["cores"].get(n), 8, 2) for n in PROCESSES)
        lines.append(f"  {case:<14} {ms}   {cores}  {_num(c['records_written_per_event'], 9, 2)}")
    cap = summary["produce_cap_records_per_s"]
    verdict = "PASS" if summary["pass"] else "MISS"
    lines += [
        "",
        "  produce cap, one aiokafka producer with the worker's producer settings doing nothing else (the preload):",
        f"    {cap:,.0f} records/s (rounds: {' '.join(f'{c:,.0f}' for c in summary['produce_cap_rounds'])});"
        f" the pass-through reaches {summary['passthrough_vs_cap']:.0%} of it",
        "",
        f"  {'figure':<40} {'value':>8}   {'goal':<8} result",
        f"  {'pipeline (replies) / pass-through':<40} {summary['ratio']:>8.1%}   {'>= 50%':<8} {verdict}",
        f"  {'  per round':<40} {' '.join(f'{x:.0%}' for x in summary['round_ratios']):>8}",
        f"  {'dedupe stage (clean) / pass-through':<40} {summary['ratio_clean']:>8.1%}   {'-':<8} (reported)",
        f"  {'state floor / pass-through':<40} {summary['ratio_state_floor']:>8.1%}   {'-':<8} (reported)",
        f"  {'pipeline (replies) / state floor':<40} {summary['ratio_to_state_floor']:>8.1%}   {'-':<8} (reported)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline", description=description(__doc__))
    parser.add_argument("--events", type=int, default=3000, help="raw events per round (default 3000)")
    parser.add_argument(
        "--users", type=int, default=300, help="distinct users; events/users messages each (default 300)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each case once per round; median (default 3)")
    parser.add_argument(
        "--partitions", type=int, help="partitions of every topic (default: WXSTREAM_PARTITIONS's default)"
    )
    parser.add_argument(
        "--no-workaround",
        action="store_true",
        help="multi-record batches everywhere (WXSTREAM_KAFKA_ONE_RECORD_BATCHES=0), as with a real Kafka",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        help="accepted for a shared `make bench BENCH_ARGS=...`; unused: --events sets the length",
    )
    parser.add_argument(
        "--state-tables",
        type=int,
        default=3,
        help="Faust tables the state floor writes per event (default 3: seen keys, rate window, session)",
    )
    parser.add_argument("--case-timeout", type=float, default=300.0, help="seconds one case may take (default 300)")
    parser.add_argument("--check", action="store_true", help="exit 1 when the goal is missed")
    args = parser.parse_args(argv)
    if args.users < 1 or args.events < args.users or args.events % args.users:
        parser.error("--events must be a multiple of --users (>= 1)")
    if args.rounds < 1 or (args.partitions is not None and args.partitions < 1):
        parser.error("--rounds and --partitions must be >= 1")
    if args.state_tables < 0:
        parser.error("--state-tables must be >= 0")

    def progress(line: str) -> None:
        print(f"  {line}", file=sys.stderr, flush=True)

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="wxstream-bench-pipeline-") as tmp:
        bench = Bench(Path(tmp), args)
        try:
            print("pipeline bench: starting tritonserver ...", file=sys.stderr, flush=True)
            bench.start()
            caps, runs = asyncio.run(bench.run(progress))
        finally:
            bench.stop()
    settings = bench.settings
    summary = summarize(caps, runs, args.state_tables)
    print()
    print(report(summary, args, settings))
    print(f"\n  total time {time.monotonic() - started:.0f} s")

    results = RESULTS_DIR / ("pipeline.json" if settings.one_record_batches else "pipeline-no-workaround.json")
    results.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": "pipeline",
        "what": "raw events/s through the worker (dedupe, rate limits, session, echo model) vs a bare Faust pass-through",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {
            "events": args.events,
            "users": args.users,
            "rounds": args.rounds,
            "partitions": settings.partitions,
            "one_record_batches": settings.one_record_batches,
            "linger_ms": settings.kafka_linger_ms,
            "fetch_max_wait_ms": settings.kafka_fetch_max_wait_ms,
            "model": settings.model_name,
            "state_tables": args.state_tables,
        },
        **summary,
        "runs": runs,
        "environment": environment("broker, tritonserver, the Faust process and the bench share the same cores"),
    }
    write_results(results, record)
    return 1 if args.check and not summary["pass"] else 0


if __name__ == "__main__":
    sys.exit(main())
