"""Benchmark: what a fetch costs the embedded broker once a partition holds many batches.

The embedded broker keeps each partition as a list of stored batches and goes through all
of them to answer a fetch that returns records (a fetch at the end of the partition, with
nothing to return, costs nothing extra). With the embedded broker every wxstream producer
writes one-record batches (README: "The embedded broker's one known bug"), so the cost of
each hop of the pipeline grows with the number of records in the partition: the longer a
stack on the embedded broker runs, the more CPU the broker spends per message.

loaded   a partition preloaded with `--batches` one-record batches, written the way the
         stack writes them (packed many to a produce request)
fresh    another partition of the same topic, nearly empty (baseline)

Per round, each partition in turn (fresh, loaded; loaded, fresh; ...) gets `--probes`
round trips: one record produced with acks=all, then fetched by a consumer waiting at the
end of the partition, as each agent waits for the next event. Reported: round trips per
second and broker CPU per round trip of each, the ratio loaded / fresh, and the broker's
CPU per stored batch per fetch, (loaded - fresh) / batches. Each figure is the median of
its rounds. Results go to bench/results/broker.json.

    make bench
    .venv/bin/python -m bench.broker [--batches 20000] [--probes 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.embedded.broker import start_broker
from app.record_batches import pack_one_record_batches
from app.settings import PRODUCER_BATCH_BYTES
from bench import description
from bench.timing import command_line, cpu_seconds, environment, write_results

RESULTS = Path(__file__).resolve().parent / "results" / "broker.json"
TOPIC = "bench.broker.v1"
FRESH, LOADED = "fresh", "loaded"
PARTITION = {FRESH: 0, LOADED: 1}
VALUE = b"v" * 300  # about a raw event's size


async def preload(url: str, batches: int) -> float:
    """Write `batches` one-record batches to the loaded partition; records/s."""
    admin = AIOKafkaAdminClient(bootstrap_servers=url)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, num_partitions=len(PARTITION), replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=url, linger_ms=0, max_batch_size=PRODUCER_BATCH_BYTES, acks="all")
    pack_one_record_batches(producer)
    await producer.start()
    try:
        started = time.perf_counter()
        sent = [await producer.send(TOPIC, VALUE, partition=PARTITION[LOADED]) for _ in range(batches)]
        await asyncio.gather(*sent)
        return batches / (time.perf_counter() - started)
    finally:
        await producer.stop()


def _broker_cpu(pid: int) -> float:
    seconds = cpu_seconds(pid)
    if seconds is None:
        raise RuntimeError("the broker exited during the measurement")
    return seconds


async def probe(url: str, broker_pid: int, case: str, probes: int) -> dict[str, float]:
    """`probes` produce-then-fetch round trips on the case's partition."""
    tp = TopicPartition(TOPIC, PARTITION[case])
    producer = AIOKafkaProducer(bootstrap_servers=url, linger_ms=0, acks="all")
    consumer = AIOKafkaConsumer(bootstrap_servers=url, fetch_max_wait_ms=25, enable_auto_commit=False)
    await producer.start()
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_end(tp)
        await producer.send_and_wait(TOPIC, VALUE, partition=tp.partition)  # one warm-up trip
        await consumer.getone(tp)
        latencies = []
        cpu_before, started = _broker_cpu(broker_pid), time.perf_counter()
        for _ in range(probes):
            sent = time.perf_counter()
            await producer.send_and_wait(TOPIC, VALUE, partition=tp.partition)
            await consumer.getone(tp)
            latencies.append(time.perf_counter() - sent)
        elapsed, cpu = time.perf_counter() - started, _broker_cpu(broker_pid) - cpu_before
    finally:
        await consumer.stop()
        await producer.stop()
    return {
        "round_trips_per_s": probes / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "broker_cpu_ms_per_round_trip": cpu / probes * 1000,
    }


def summarise(rounds: list[dict[str, dict[str, float]]], batches: int) -> dict[str, Any]:
    def median(case: str, figure: str) -> float:
        return statistics.median(r[case][figure] for r in rounds)

    cases = {
        case: {figure: median(case, figure) for figure in rounds[0][case]} for case in (FRESH, LOADED)
    }
    extra_ms = cases[LOADED]["broker_cpu_ms_per_round_trip"] - cases[FRESH]["broker_cpu_ms_per_round_trip"]
    return {
        "candidate": {"name": f"partition of {batches:,} batches", "ops_per_s": cases[LOADED]["round_trips_per_s"]},
        "baseline": {"name": "fresh partition", "ops_per_s": cases[FRESH]["round_trips_per_s"]},
        "ratio": cases[LOADED]["round_trips_per_s"] / cases[FRESH]["round_trips_per_s"],
        "cases": cases,
        "broker_cpu_us_per_stored_batch": extra_ms * 1000 / batches,
        "round_ratios": [r[LOADED]["round_trips_per_s"] / r[FRESH]["round_trips_per_s"] for r in rounds],
    }


def report(summary: dict[str, Any], args: argparse.Namespace) -> str:
    cases = summary["cases"]
    lines = [
        "",
        "embedded broker: a produce-then-fetch round trip on a partition of many batches vs a fresh one",
        f"  {args.batches:,} one-record batches preloaded ({summary['preload_records_per_s']:,.0f} records/s);"
        f" {args.probes} round trips per case and round, {args.rounds} rounds, alternating; medians",
        "",
        "  partition        round trips/s   p50 ms   broker CPU ms per round trip",
    ]
    for case in (FRESH, LOADED):
        c = cases[case]
        lines.append(
            f"  {case:15s} {c['round_trips_per_s']:14,.0f} {c['p50_ms']:8.2f} {c['broker_cpu_ms_per_round_trip']:14.2f}"
        )
    lines += [
        "",
        f"  loaded / fresh round trips/s      {summary['ratio']:.2f}x  (rounds: "
        + " ".join(f"{r:.2f}" for r in summary["round_ratios"])
        + ")",
        f"  broker CPU per stored batch per fetch  {summary['broker_cpu_us_per_stored_batch']:.2f} us",
    ]
    return "\n".join(lines)


async def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    broker, url = start_broker(work / "logs")
    try:
        print(f"broker bench: preloading {args.batches:,} one-record batches ...", flush=True)
        preload_rate = await preload(url, args.batches)
        rounds = []
        for i in range(args.rounds):
            order = (FRESH, LOADED) if i % 2 == 0 else (LOADED, FRESH)
            rounds.append({case: await probe(url, broker.pid or 0, case, args.probes) for case in order})
            fresh, loaded = rounds[-1][FRESH], rounds[-1][LOADED]
            print(
                f"  round {i + 1}/{args.rounds}: fresh {fresh['round_trips_per_s']:,.0f}/s,"
                f" loaded {loaded['round_trips_per_s']:,.0f}/s",
                flush=True,
            )
    finally:
        broker.stop()
    return {**summarise(rounds, args.batches), "preload_records_per_s": preload_rate}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.broker", description=description(__doc__))
    parser.add_argument("--batches", type=int, default=20000, help="one-record batches in the loaded partition (default 20000)")
    parser.add_argument("--probes", type=int, default=100, help="round trips per case and round (default 100)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each case once per round; median (default 3)")
    parser.add_argument("--seconds", type=float, help="accepted for a shared `make bench BENCH_ARGS=...`; unused")
    parser.add_argument("--check", action="store_true", help="accepted for `make bench`; this benchmark has no goal")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="wxstream-bench-broker-") as tmp:
        summary = asyncio.run(run(args, Path(tmp)))
    record = {
        "benchmark": "broker",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "what": "produce-then-fetch round trips on an embedded-broker partition of many one-record batches vs a fresh partition",
        "config": {"batches": args.batches, "probes": args.probes, "rounds": args.rounds},
        **summary,
        "environment": environment("the broker and this process share the machine's cores"),
        "command": command_line(sys.argv),
    }
    print(report(summary, args))
    write_results(RESULTS, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
