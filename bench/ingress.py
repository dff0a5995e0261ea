"""Benchmark: requests/s and latency of the ingress for safe-mode callbacks, with the real
embedded broker behind it, against a bare aiohttp handler that only answers `success`.

full     `wxstream ingress` as `wxstream up` runs it (settings from `Settings.to_env()`),
         passive replies off (WXSTREAM_PASSIVE_REPLY_WAIT_S=0, so no worker or Triton):
         per POST it verifies, decrypts and parses the callback, produces the raw event
         with acks=all to the embedded broker and waits for the acknowledgement, then,
         having no reply to give, hands the `deferred` delivery record over to the sender
         (written, not waited for), and answers.
bare     bench/bare_server.py: the same aiohttp server setup answering `success` at once.
floor    bench/bare_server.py --kafka: the bare server writing each body to the broker through
         the ingress's own write path and settings and waiting for the acknowledgement: the
         least a durable ingress on aiohttp does. Not a goal: it shows how much of the
         distance to the bare server the durable write alone takes, on this machine.

Load comes from a separate process (bench/load.py: prepared HTTP/1.1 requests over
keep-alive connections, on uvloop) that sends distinct callbacks prepared before timing.
The cases alternate (bare, floor, full; full, floor, bare; ...) round by round and each
figure is the median of its rounds.

1. closed loop: the highest requests/s each server sustains with `--connections` senders;
   goals: full >= 60% of bare, and full >= 3,000 requests/s.
2. open loop at `--rate` requests/s on a fixed timeline, latency from each request's
   scheduled send time; goal: full p99 < 20 ms (bare shown for reference).

The ingress runs with the settings `wxstream up` gives it: with the embedded broker that
means one-record batches (see README), which the ingress packs several to a produce
request; `--batches multi` and `--partitions N` show what the ingress does without that
workaround or with more partitions; `--processes N` runs N processes of each server on
its port (SO_REUSEPORT), as several `wxstream ingress` with their own WXSTREAM_INGRESS_ID
can. Client, servers and broker share this machine's cores, so the load generator takes
CPU from the servers; the table reports what each process used, and the server's CPU
time per request. Results go to bench/results/ingress.json.

    make bench
    .venv/bin/python -m bench.ingress [--seconds 5] [--rounds 3] [--connections 32] [--rate 1000] [--processes 1]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from app.embedded.broker import start_broker
from app.embedded.process import ManagedProcess, free_port
from app.kafka_admin import create_topics, ensure_topics
from app.settings import Settings
from app.topics import RAW_EVENTS
from bench import description
from bench.timing import environment, write_results

RESULTS = Path(__file__).resolve().parent / "results" / "ingress.json"
ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "bench"
FULL, FLOOR, BARE = "full ingress", "produce floor", "bare aiohttp"
CASES = (BARE, FLOOR, FULL)
SERVERS = {BARE: "bare", FLOOR: "floor", FULL: "ingress"}  # each case's processes, for their CPU
FLOOR_TOPIC = "bench.floor.v1"

GOAL_RATIO = 0.60
GOAL_RPS = 3000.0
GOAL_P99_MS = 20.0
DRAIN_S = 2.0  # open loop: how long to wait for answers after the last scheduled send


def _accounts_toml(path: Path) -> None:
    key = base64.b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")
    path.write_text(
        f"[accounts.{ACCOUNT}]\n"
        f'token = "{secrets.token_hex(16)}"\n'
        f'appid = "wx{secrets.token_hex(8)}"\n'
        f'aes_keys = ["{key}"]\n'
        'mode = "safe"\n'
        'original_id = "gh_3f9a1c2b7d4e"\n',
        encoding="utf-8",
    )


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("WXSTREAM_")}


def _log_says(proc: ManagedProcess, text: str) -> Callable[[], bool]:
    """A readiness probe for one of several processes on one port, which a request can't single out."""
    return lambda: text in proc.log_path.read_text(encoding="utf-8", errors="replace")


class Bench:
    """The broker, the ingress and the bare server, started once and always stopped."""

    def __init__(
        self, work: Path, partitions: int | None = None, batches: str | None = None, processes: int = 1
    ) -> None:
        self.work = work
        self.partitions = partitions
        self.batches = batches
        self.server_processes = processes
        self.logs = work / "logs"
        self.accounts = work / "accounts.toml"
        self.processes: list[ManagedProcess] = []
        self.urls: dict[str, str] = {}
        self.pids: dict[str, list[int]] = {}
        self.settings: Settings | None = None

    def start(self) -> None:
        _accounts_toml(self.accounts)
        broker, kafka_url = start_broker(self.logs)
        self.processes.append(broker)
        self.pids["broker"] = [broker.pid or 0]
        base = Settings.from_env(_clean_env())
        settings = replace(
            base,
            data_dir=self.work / "data",
            accounts=self.accounts,
            kafka_url=kafka_url,
            # `wxstream up` turns one-record batches on with the embedded broker; --batches multi
            # shows what the ingress does where they are not needed (a real Kafka cluster).
            kafka_one_record_batches=base.one_record_batches if self.batches is None else self.batches == "one",
            partitions=self.partitions or base.partitions,
            ingress_port=free_port(base.ingress_host),
            passive_reply_wait_s=0.0,
        )
        self.settings = settings
        ensure_topics(settings, kafka_url)
        create_topics(kafka_url, (FLOOR_TOPIC,), settings.partitions)
        ports = {case: free_port("127.0.0.1") for case in (BARE, FLOOR)}
        floor_flags = ["--kafka", kafka_url, "--topic", FLOOR_TOPIC]
        floor_flags += ["--one-record-batches"] if settings.one_record_batches else []
        self.pids.update({server: [] for server in SERVERS.values()})
        # Each process of a server listens on the server's one port (SO_REUSEPORT); each
        # ingress says in its log when it reaches the broker, and has its own spool
        # (WXSTREAM_INGRESS_ID).
        for i in range(self.server_processes):
            env = {**_clean_env(), **replace(settings, ingress_id=str(i)).to_env(), "PYTHONUNBUFFERED": "1"}
            ingress = self._spawn(f"ingress-{i}", [sys.executable, "-m", "app", "ingress"], env)
            bare_argv = [sys.executable, "-m", "bench.bare_server", "--port", str(ports[BARE])]
            bare = self._spawn(f"bare-{i}", bare_argv, _clean_env())
            floor_argv = [sys.executable, "-m", "bench.bare_server", "--port", str(ports[FLOOR]), *floor_flags]
            floor = self._spawn(f"floor-{i}", floor_argv, _clean_env())
            ingress.wait_ready(_log_says(ingress, "ingress producing to"), timeout=60)  # connected
            for server in (bare, floor):
                server.wait_ready(_log_says(server, "listening on"), timeout=30)
            for case, proc in ((FULL, ingress), (BARE, bare), (FLOOR, floor)):
                self.pids[SERVERS[case]].append(proc.pid or 0)
        self.urls = {
            FULL: f"{settings.ingress_url}/wechat/{ACCOUNT}",
            **{case: f"http://127.0.0.1:{port}/wechat/{ACCOUNT}" for case, port in ports.items()},
        }

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> ManagedProcess:
        proc = ManagedProcess(name, argv, self.logs / f"{name}.log", env=env, cwd=ROOT).start()
        self.processes.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()

    def check_alive(self) -> None:
        for proc in self.processes:
            if not proc.alive:
                raise RuntimeError(f"{proc.name} exited with rc={proc.returncode()}{proc.log_tail()}")

    def load(self, mode: str, args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
        """`args.rounds` interleaved runs of bench.load against every server; each case's runs."""
        self.check_alive()
        argv = [
            sys.executable, "-m", "bench.load", "--mode", mode,
            *(arg for case in CASES for arg in ("--target", f"{case}={self.urls[case]}")),
            "--accounts", str(self.accounts), "--account", ACCOUNT,
            "--seconds", str(args.seconds), "--warmup", str(args.warmup), "--rounds", str(args.rounds),
            "--connections", str(args.connections), "--rate", str(args.rate), "--messages", str(args.messages),
            "--drain", str(DRAIN_S),
        ]  # fmt: skip
        for name, pids in self.pids.items():
            argv += ["--watch", f"{name}={','.join(map(str, pids))}"]
        budget = args.rounds * len(CASES) * (args.seconds + args.warmup + 15) + 60
        # stderr (progress lines) goes straight to the terminal.
        done = subprocess.run(argv, cwd=ROOT, env=_clean_env(), stdout=subprocess.PIPE, text=True, timeout=budget)
        if done.returncode != 0:
            raise RuntimeError(f"bench.load failed (rc={done.returncode})")
        self.check_alive()
        runs: dict[str, list[dict[str, Any]]] = {case: [] for case in CASES}
        for run in json.loads(done.stdout)["runs"]:
            run["cpu_cores"]["server"] = run["cpu_cores"].get(SERVERS[run["target"]])
            runs[run["target"]].append(run)
        return runs

    def outcomes(self) -> dict[str, int]:
        """The ingress's callbacks by outcome (accepted, spooled, ...), from its /metrics."""
        assert self.settings is not None
        with urllib.request.urlopen(self.settings.ingress_url + "/metrics", timeout=5) as response:
            text = response.read().decode()
        counts: dict[str, int] = {}
        for line in text.splitlines():
            if line.startswith("wxstream_ingress_requests_total{"):
                outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
                counts[outcome] = counts.get(outcome, 0) + int(float(line.rsplit(" ", 1)[1]))
        return counts

    def raw_topic_records(self) -> int:
        """Records in the raw topic: the sum of its partitions' end offsets (one-record
        batches, so the embedded broker reports them right)."""
        from kafka import KafkaConsumer, TopicPartition

        assert self.settings is not None and self.settings.kafka_url is not None
        consumer = KafkaConsumer(bootstrap_servers=self.settings.kafka_url, client_id="wxstream-bench")
        try:
            partitions = [
                TopicPartition(RAW_EVENTS.name, p) for p in consumer.partitions_for_topic(RAW_EVENTS.name) or ()
            ]
            return sum(consumer.end_offsets(partitions).values())
        finally:
            consumer.close()


def _failed(results: list[dict[str, Any]]) -> int:
    return sum(sum(r["errors"].values()) for r in results)


def _unfinished(results: list[dict[str, Any]]) -> int:
    return sum(r.get("unfinished", 0) for r in results)


def _median(values: list[float | None]) -> float | None:
    return statistics.median(values) if values and None not in values else None  # type: ignore[type-var]


def _cores(results: list[dict[str, Any]], name: str) -> float | None:
    return _median([r["cpu_cores"].get(name) for r in results])


def _cpu_per_request(results: list[dict[str, Any]], rate_key: str) -> float | None:
    """Median over runs of the server's CPU seconds per answered request, in microseconds."""
    values = [r["cpu_cores"].get("server") for r in results]
    if not values or None in values:
        return None
    return statistics.median(c / r[rate_key] * 1e6 for c, r in zip(values, results) if r[rate_key])


def _pooled(results: list[dict[str, Any]]) -> dict[str, float]:
    from bench.load import percentile

    ordered = sorted(x for r in results for x in r["latencies_ms"])
    return {
        "p50": percentile(ordered, 50),
        "p99": percentile(ordered, 99),
        "p999": percentile(ordered, 99.9),
        "max": ordered[-1],
    }


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _cpu_columns(runs: list[dict[str, Any]]) -> str:
    cores = [_cores(runs, n) for n in ("server", "broker", "client")]
    return " ".join(f"{c:>6.2f}" if c is not None else f"{'-':>6}" for c in cores)


def report(
    closed: dict[str, list[dict[str, Any]]], opened: dict[str, list[dict[str, Any]]], args: argparse.Namespace
) -> tuple[str, dict[str, Any]]:
    rps = {case: statistics.median(r["rps"] for r in runs) for case, runs in closed.items()}
    ratio = rps[FULL] / rps[BARE]
    floor_ratio = rps[FLOOR] / rps[BARE]
    # The server's CPU time per request: less sensitive than req/s to other load on the machine.
    cpu_us = {case: _cpu_per_request(runs, "rps") for case, runs in closed.items()}
    lat = {case: _pooled(runs) for case, runs in opened.items()}
    achieved = {case: statistics.median(r["achieved_rps"] for r in runs) for case, runs in opened.items()}
    unfinished = {case: _unfinished(runs) for case, runs in opened.items()}
    checks = {"rps": rps[FULL] >= GOAL_RPS, "ratio": ratio >= GOAL_RATIO, "p99": lat[FULL]["p99"] < GOAL_P99_MS}
    scheduled = sum(r["scheduled"] for r in opened[FULL])
    batches = "one-record" if args.one_record_batches else "multi-record"
    lines = [
        "ingress: safe-mode text callbacks, POST /wechat/<account>, answered `success`",
        f"  full = `wxstream ingress` + embedded broker (acks=all, {args.partitions} partitions, {batches} batches),",
        "         passive replies off; bare = aiohttp handler answering `success`;",
        "         floor = the bare handler producing the body (acks=all) and waiting for the broker first",
        f"  each server: {args.processes} process{'es' if args.processes > 1 else ''} on one port (SO_REUSEPORT)"
        + (", CPU columns summed over them" if args.processes > 1 else ""),
        f"  load: bench.load in its own process, prepared HTTP/1.1 requests on {args.connections} keep-alive connections,",
        f"        {args.messages:,} distinct prepared callbacks; {args.rounds} interleaved rounds of {args.seconds:g} s",
        f"        (+{args.warmup:g} s warm-up) per case; req/s is the median round",
        f"  NOTE: load generator, servers and broker share this machine's {os.cpu_count()} cores (and whatever else",
        "        runs on it); the CPU columns are the cores each process used during the measured seconds",
        "",
        "  1. closed loop, max throughput",
        f"     {'case':<13} {'req/s':>7}  {'rounds (req/s)':<21} {'p50 ms':>7} {'p99 ms':>7}"
        f"  {'server':>6} {'broker':>6} {'client':>6}  {'server CPU/req':>14}",
    ]
    for case in CASES:
        runs = closed[case]
        rounds = " ".join(f"{r['rps']:,.0f}" for r in runs)
        p50 = statistics.median(r["latency_ms"]["p50"] for r in runs)
        p99 = statistics.median(r["latency_ms"]["p99"] for r in runs)
        per_req = f"{cpu_us[case]:,.0f} us" if cpu_us[case] is not None else "-"
        lines.append(
            f"     {case:<13} {rps[case]:>7,.0f}  {rounds:<21} {p50:>7.2f} {p99:>7.2f}  {_cpu_columns(runs)}  {per_req:>14}"
        )
    lines += [
        "",
        f"  2. open loop, {args.rate:,.0f} req/s offered on a fixed schedule, latency from the scheduled send time",
        f"     (rounds pooled, {scheduled:,} requests per case; requests still unanswered {DRAIN_S:g} s after the",
        "     last send count with the age they reached, so a server that falls behind shows)",
        f"     {'case':<13} {'achieved':>8} {'p50 ms':>8} {'p99 ms':>8} {'p99.9':>8} {'max':>8}"
        f"  {'unanswered':>10}  {'server':>6} {'broker':>6} {'client':>6}",
    ]
    for case in CASES:
        l = lat[case]
        lines.append(
            f"     {case:<13} {achieved[case]:>8,.0f} {l['p50']:>8.2f} {l['p99']:>8.2f} {l['p999']:>8.2f} {l['max']:>8.1f}"
            f"  {unfinished[case]:>10,}  {_cpu_columns(opened[case])}"
        )
    lines.append("     p99 per round (ms): " + "; ".join(
        f"{case} " + " ".join(f"{r['latency_ms']['p99']:,.1f}" for r in opened[case]) for case in CASES
    ))  # fmt: skip
    p99_label = f"full ingress p99 at {args.rate:,.0f} req/s (ms)"
    p50_label = f"full ingress p50 at {args.rate:,.0f} req/s (ms)"
    lines += [
        "",
        f"  {'figure':<42} {'value':>10}   {'goal':<12} result",
        f"  {'full ingress max throughput (req/s)':<42} {rps[FULL]:>10,.0f}   {'>= 3,000':<12} {_verdict(checks['rps'])}",
        f"  {'full / bare max throughput':<42} {ratio:>10.1%}   {'>= 60%':<12} {_verdict(checks['ratio'])}",
        f"  {p99_label:<42} {lat[FULL]['p99']:>10,.2f}   {'< 20 ms':<12} {_verdict(checks['p99'])}",
        f"  {p50_label:<42} {lat[FULL]['p50']:>10,.2f}   {'-':<12} (reported)",
        f"  {'produce floor / bare max throughput':<42} {floor_ratio:>10.1%}   {'-':<12}"
        f" (reported: {rps[FLOOR]:,.0f} req/s)",
        f"  {'full ingress / produce floor':<42} {rps[FULL] / rps[FLOOR]:>10.1%}   {'-':<12} (reported)",
    ]
    if cpu_us[FULL] and cpu_us[BARE]:
        label = "server CPU per request, bare / full"
        lines.append(
            f"  {label:<42} {cpu_us[BARE] / cpu_us[FULL]:>10.1%}   {'-':<12}"
            f" (reported: {cpu_us[BARE]:,.0f} / {cpu_us[FULL]:,.0f} us)"
        )
    summary = {
        "full_rps": rps[FULL],
        "bare_rps": rps[BARE],
        "ratio": ratio,
        "floor_rps": rps[FLOOR],
        "floor_ratio": floor_ratio,
        "floor_latency_ms": lat[FLOOR],
        "server_cpu_us_per_request": cpu_us,
        "full_latency_ms": lat[FULL],
        "bare_latency_ms": lat[BARE],
        "open_loop_achieved_rps": achieved,
        "open_loop_unanswered": unfinished,
        "goals": {"full_rps": GOAL_RPS, "ratio": GOAL_RATIO, "full_p99_ms": GOAL_P99_MS},
        "pass": checks,
    }
    return "\n".join(lines), summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingress", description=description(__doc__))
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per case per round (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported (default 3)")
    parser.add_argument("--connections", type=int, default=32, help="client keep-alive connections (default 32)")
    parser.add_argument("--rate", type=float, default=1000.0, help="offered req/s of the latency test (default 1000)")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds before each run (default 0.5)")
    parser.add_argument(
        "--messages", type=int, default=4000, help="distinct callbacks the load generator prepares (default 4000)"
    )
    parser.add_argument(
        "--partitions", type=int, help="partitions of the topics (default: WXSTREAM_PARTITIONS's default)"
    )
    parser.add_argument(
        "--batches",
        choices=("one", "multi"),
        help="producer batches: one record each (default with the embedded broker, as `wxstream up`) or several",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="processes of each server, sharing its port through SO_REUSEPORT (default 1)",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.rounds < 1 or args.connections < 1 or args.rate <= 0 or args.warmup < 0:
        parser.error("--seconds, --connections and --rate must be > 0, --rounds >= 1, --warmup >= 0")
    if args.partitions is not None and args.partitions < 1:
        parser.error("--partitions must be >= 1")
    if args.processes < 1:
        parser.error("--processes must be >= 1")

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="wxstream-bench-") as tmp:
        bench = Bench(Path(tmp), args.partitions, args.batches, args.processes)
        try:
            print("ingress bench: starting the embedded broker, the ingress and the baseline servers ...", flush=True)
            bench.start()
            assert bench.settings is not None
            args.partitions = bench.settings.partitions
            args.one_record_batches = bench.settings.one_record_batches
            closed = bench.load("closed", args)
            opened = bench.load("open", args)
            outcomes = bench.outcomes()
            # The embedded broker's end offsets are right for one-record batches only.
            in_topic = bench.raw_topic_records() if args.one_record_batches else None
        finally:
            bench.stop()
    errors = sum(_failed(runs) for results in (closed, opened) for runs in results.values())

    table, summary = report(closed, opened, args)
    print()
    print(table)
    print(f"\n  every answer was 200 `success`: {'yes' if errors == 0 else f'NO, {errors} requests failed'}")
    accepted = outcomes.get("accepted", 0)
    others = ", ".join(f"{n:,} {outcome}" for outcome, n in sorted(outcomes.items()) if outcome != "accepted")
    one_of = f"; one process's of {args.processes}, the one /metrics reached" if args.processes > 1 else ""
    print(f"  ingress outcomes (warm-up included{one_of}): {accepted:,} accepted{', ' + others if others else ''}")
    if in_topic is None:
        print("  raw topic not counted: the embedded broker's end offsets are wrong for multi-record batches")
    elif args.processes > 1:
        print(f"  raw topic holds {in_topic:,} records")
    else:
        persisted = accepted + outcomes.get("spooled", 0)
        same = "one per persisted callback" if in_topic == persisted else f"NOT the {persisted:,} persisted"
        print(f"  raw topic holds {in_topic:,} records: {same}")
    print(f"  total time {time.monotonic() - started:.0f} s")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    for runs in opened.values():
        for run in runs:
            run.pop("latencies_ms", None)  # pooled into the summary; too long to keep
    record = {
        "benchmark": "ingress",
        "what": (
            "safe-mode text callbacks through the ingress (embedded broker, acks=all) vs a bare aiohttp handler,"
            " and the floor: that handler producing each body first"
        ),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {
            "seconds": args.seconds,
            "rounds": args.rounds,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "rate": args.rate,
            "messages": args.messages,
            "partitions": args.partitions,
            "one_record_batches": args.one_record_batches,
            "processes": args.processes,
            "passive_reply_wait_s": 0.0,
            "open_loop_drain_s": DRAIN_S,
        },
        **summary,
        "errors": errors,
        "ingress_outcomes": outcomes,
        "raw_topic_records": in_topic,
        "runs": {"closed": closed, "open": opened},
        "environment": environment("load generator, servers and broker share the same cores"),
    }
    write_results(RESULTS, record)
    passed = all(summary["pass"].values()) and errors == 0
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
