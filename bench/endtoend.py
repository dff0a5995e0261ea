"""Benchmark: end to end, from a WeChat user's message to the passive reply the user sees,
at rising offered loads, against a bare aiohttp server that answers the same callbacks.

stack   the stack `wxstream up` runs (app/stack.py) with the echo model: embedded broker,
        tritonserver, worker and ingress, passive replies on (the ingress holds a callback
        up to WXSTREAM_PASSIVE_REPLY_WAIT_S for its reply), rate limits out of reach;
        replies too late for that go through the simulator's WeChat API in this process
        (not timed here).
bare    bench/bare_server.py answering `success` at once: the round trip of a callback
        alone (simulator, HTTP on loopback), with none of wxstream behind it.

The WeChat simulator's callback sender (app/simulator/) runs in this process and sends
safe-mode text callbacks, signed and encrypted as WeChat does, from `--users` users, on a
fixed timeline at each offered load of `--steps` in turn, for `--seconds` each: first to
the bare server, then to the stack. A message's latency runs from its scheduled send time
to its answer (for the stack: the passive reply the user received, which must be the
echo of their text), so queueing anywhere, the simulator included, is counted rather than
hidden. A message left without its reply (the ingress answered `success`, or the delivery
failed) counts as later than every answered one: a percentile that falls among those is
`none`. achieved = answers per second from the first answer to the last (at most the
offered rate). After each load the stack works off its backlog (until the replies topic
holds one reply per message sent), so that the next load starts clean.

Reported per load: p50/p95/p99 of both, pipeline overhead = stack minus bare at the same
percentile, achieved/offered, the cores each process used, and the time spent in each
stage, from the Kafka timestamps of each message's raw, clean and reply records:
ingress (scheduled send -> raw event produced), dedupe (-> clean event produced),
conversation (-> reply produced: limits, session, model) and passive reply (-> the user
has it). The knee is the first load where achieved < 95% of offered or the stack's p99
exceeds `--knee-p99-ms`. Goal: p99 pipeline overhead < 50 ms at 500 messages/s. Results go
to bench/results/endtoend.json.

    make bench
    .venv/bin/python -m bench.endtoend [--steps 50,100,200,350,500] [--seconds 3] [--users 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from aiokafka import AIOKafkaConsumer

from app.accounts import load_accounts
from app.embedded.process import ManagedProcess, free_port, http_ready
from app.settings import Settings
from app.simulator.callbacks import Outcome
from app.simulator.report import Report
from app.simulator.server import ApiServer
from app.simulator.state import SimState
from app.simulator.traffic import TrafficPlan, drive
from app.stack import Stack
from app.topics import CLEAN_EVENTS, RAW_EVENTS, REPLIES
from bench import description
from bench.echo_stack import echo_stack_settings
from bench.load import percentile
from bench.pipeline import CpuSamples, end_offsets, read_all
from bench.timing import clean_env, environment, write_results

RESULTS = Path(__file__).resolve().parent / "results" / "endtoend.json"
ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "bench"
STACK, BARE = "stack", "bare"

GOAL_RATE = 500.0
GOAL_OVERHEAD_P99_MS = 50.0
KNEE_ACHIEVED = 0.95  # achieved/offered below this: the load is past the knee
PERCENTILES = (("p50", 50), ("p95", 95), ("p99", 99))
STAGES = ("ingress", "dedupe", "conversation", "passive reply")
STALL_S = 10.0  # draining: give up when the replies topic does not grow for this long
POLL_S = 0.25


# -- pure figures ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    """One message at one load, in wall-clock seconds."""

    key: str  # dedupe key of the callback, `msg:<MsgId>`
    due: float  # scheduled send time
    done: float  # its delivery ended
    answered: bool  # the expected answer came back


def samples(report: Report, answered: Callable[[Outcome], bool], wall_offset: float) -> list[Sample]:
    """The report's deliveries as Samples; `wall_offset` turns monotonic times into wall times."""
    return [
        Sample(
            key=f"msg:{o.message.msg_id}",
            due=o.finished_at - latency + wall_offset,
            done=o.finished_at + wall_offset,
            answered=answered(o),
        )
        for o, latency in zip(report.outcomes, report.latencies_s)
    ]


def spread_ms(values_s: Sequence[float], missing: int = 0) -> dict[str, float | None]:
    """p50, p95, p99 and max of durations in seconds, in milliseconds (nearest rank);
    `missing` more never ended, so a percentile that falls among them is None."""
    ordered = sorted(v * 1000 for v in values_s) + [math.inf] * missing
    if not ordered:
        return {}
    figures = {**{name: percentile(ordered, q) for name, q in PERCENTILES}, "max": ordered[-1]}
    return {name: value if math.isfinite(value) else None for name, value in figures.items()}


def load_figures(measured: Sequence[Sample], offered_rps: float) -> dict[str, Any]:
    """Counts, achieved rate and latency of one target at one load."""
    answered = [s for s in measured if s.answered]
    # Answers per second from the first answer to the last (plus one interval), so a steady
    # latency costs nothing and a growing one shows; never more than the schedule allows.
    done = [s.done for s in answered]
    span = max(max(done, default=0.0) - min(done, default=0.0) + 1 / offered_rps, len(measured) / offered_rps)
    achieved = len(answered) / span
    return {
        "offered_rps": offered_rps,
        "sent": len(measured),
        "answered": len(answered),
        "unanswered": len(measured) - len(answered),
        "achieved_rps": achieved,
        "achieved_ratio": achieved / offered_rps,
        # a message without its answer never got it: it counts as later than any that did
        "latency_ms": spread_ms([s.done - s.due for s in answered], missing=len(measured) - len(answered)),
    }


def overhead_ms(stack: dict[str, float | None], bare: dict[str, float | None]) -> dict[str, float | None]:
    """What the pipeline adds to the bare round trip, percentile by percentile; None where
    either has no figure."""
    overhead: dict[str, float | None] = {}
    for name, _ in PERCENTILES:
        a, b = stack.get(name), bare.get(name)
        overhead[name] = a - b if a is not None and b is not None else None
    return overhead


def stage_spreads(
    measured: Sequence[Sample], raw: dict[str, float], clean: dict[str, float], replies: dict[str, float]
) -> dict[str, dict[str, float]]:
    """Time spent in each stage by the answered messages; the dicts map a dedupe key to the
    wall time its record was produced on that topic."""
    spans: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for s in measured:
        if s.answered and s.key in raw and s.key in clean and s.key in replies:
            marks = (s.due, raw[s.key], clean[s.key], replies[s.key], s.done)
            for stage, start, end in zip(STAGES, marks, marks[1:]):
                spans[stage].append(max(0.0, end - start))
    return {stage: spread_ms(values) for stage, values in spans.items() if values}


def find_knee(steps: Sequence[dict[str, Any]], p99_limit_ms: float) -> float | None:
    """The first offered load the stack does not keep up with, or None."""
    for step in steps:
        stack = step[STACK]
        p99 = stack["latency_ms"].get("p99")
        if stack["achieved_ratio"] < KNEE_ACHIEVED or p99 is None or p99 > p99_limit_ms:
            return stack["offered_rps"]
    return None


def goal_verdict(steps: Sequence[dict[str, Any]]) -> tuple[float | None, bool | None]:
    """p99 overhead at the goal's load and whether it meets the goal; None when not run."""
    at_goal = next((s for s in steps if s[STACK]["offered_rps"] == GOAL_RATE), None)
    if at_goal is None:
        return None, None
    p99 = at_goal["overhead_ms"].get("p99")
    return p99, p99 is not None and at_goal[STACK]["achieved_ratio"] >= KNEE_ACHIEVED and p99 < GOAL_OVERHEAD_P99_MS


# -- the stack, the bare server and the load -----------------------------------------------


def _accounts_toml(path: Path) -> None:
    """One safe-mode account whose rate limits no load reaches, so every message gets to
    the model, with the AppSecret the sender needs for the customer-service API."""
    key = base64.b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")
    path.write_text(
        f"[accounts.{ACCOUNT}]\n"
        f'token = "{secrets.token_hex(16)}"\n'
        f'appid = "wx{secrets.token_hex(8)}"\n'
        f'aes_keys = ["{key}"]\n'
        f'secret = "{secrets.token_hex(16)}"\n'
        'mode = "safe"\n'
        'original_id = "gh_3f9a1c2b7d4e"\n'
        "user_per_minute = 1000000\n"
        "account_per_second = 1000000\n",
        encoding="utf-8",
    )


class EndToEnd:
    """The stack and the bare server, started once and always stopped, and the simulator
    that loads them."""

    def __init__(self, work: Path, args: argparse.Namespace) -> None:
        self.args = args
        self.work = work
        accounts = work / "accounts.toml"
        _accounts_toml(accounts)
        self.api_port = free_port("127.0.0.1")
        self.settings = echo_stack_settings(work, accounts, self.api_port, args.partitions)
        self.stack = Stack(self.settings, echo=lambda line: print(line, file=sys.stderr, flush=True))
        self.bare: ManagedProcess | None = None
        self.urls: dict[str, str] = {}
        self.state = SimState.of(load_accounts(self.settings).values())
        self.sent_to_stack = 0

    def start(self) -> None:
        self.stack.start()
        port = free_port("127.0.0.1")
        self.bare = ManagedProcess(
            "bare",
            [sys.executable, "-m", "bench.bare_server", "--port", str(port)],
            self.work / "logs" / "bare.log",
            env=clean_env(),
            cwd=ROOT,
        ).start()
        self.bare.wait_ready(http_ready(f"http://127.0.0.1:{port}/healthz"), timeout=30)
        assert self.stack.child_settings is not None
        self.urls = {STACK: self.stack.child_settings.ingress_url, BARE: f"http://127.0.0.1:{port}"}

    def stop(self) -> None:
        if self.bare is not None:
            self.bare.stop()
        self.stack.stop()

    def check_alive(self) -> None:
        for proc in [*self.stack.processes, self.bare]:
            if proc is not None and not proc.alive:
                raise RuntimeError(f"{proc.name} exited with rc={proc.returncode()}{proc.log_tail()}")

    def cpu(self) -> CpuSamples:
        """CPU of every process of the stack (each leads its own process group)."""
        return CpuSamples({proc.name: proc.pid or 0 for proc in self.stack.processes})

    async def load(self, target: str, rate: float, seconds: float, seed: int) -> list[Sample]:
        """`seconds` of callbacks at `rate` to `target`; every delivery, once ended."""
        self.state.reset()
        plan = TrafficPlan(
            rate=rate,
            users=self.args.users,
            duration_s=seconds,
            accounts=(ACCOUNT,),
            seed=seed,
            max_connections=self.args.connections,
            in_order=False,  # offered load stays offered: no user waits for their last answer
        )
        wall_offset = time.time() - time.monotonic()
        report = await drive(self.state, self.urls[target], plan)
        if target == STACK:
            self.sent_to_stack += report.tally.sent
            others = sum(o.result == "passive" and o.reply != o.message.text for o in report.outcomes)
            if others:
                print(
                    f"    {others:,} replies were not the echo (a fallback text?): counted as no reply", file=sys.stderr
                )
            return samples(report, lambda o: o.result == "passive" and o.reply == o.message.text, wall_offset)
        return samples(report, lambda o: o.result == "acked", wall_offset)

    async def drain(self) -> float:
        """Wait until the replies topic holds a reply for every message sent to the stack (or
        stops growing); returns the seconds it took."""
        s = self.stack.child_settings
        assert s is not None and s.kafka_url is not None
        started = time.monotonic()
        consumer = AIOKafkaConsumer(bootstrap_servers=s.kafka_url, client_id="wxstream-bench-drain")
        await consumer.start()
        try:
            last, moved = -1, time.monotonic()
            while True:
                self.check_alive()
                replies = await end_offsets(consumer, REPLIES.name, s.partitions)
                if replies >= self.sent_to_stack:
                    return time.monotonic() - started
                if replies != last:
                    last, moved = replies, time.monotonic()
                elif time.monotonic() - moved > STALL_S:
                    print(f"    replies stalled at {replies:,} of {self.sent_to_stack:,}", file=sys.stderr, flush=True)
                    return time.monotonic() - started
                await asyncio.sleep(POLL_S)
        finally:
            await consumer.stop()

    async def produced_at(self) -> tuple[dict[str, float], ...]:
        """For each of the raw, clean and replies topics: dedupe key -> wall time its first
        record was produced (the record's Kafka timestamp)."""
        s = self.stack.child_settings
        assert s is not None and s.kafka_url is not None
        found = []
        for topic, key_field in ((RAW_EVENTS, "dedupe_key"), (CLEAN_EVENTS, "dedupe_key"), (REPLIES, "in_reply_to")):
            records = await read_all(s.kafka_url, topic.name, s.partitions, self.sent_to_stack, timeout=30)
            times: dict[str, float] = {}
            for record in sorted(records, key=lambda r: r.timestamp):
                times.setdefault(json.loads(record.value)[key_field], record.timestamp / 1000)
            found.append(times)
        return tuple(found)


# -- the run ---------------------------------------------------------------------------------


async def run(bench: EndToEnd, args: argparse.Namespace) -> list[dict[str, Any]]:
    async with ApiServer(bench.state, port=bench.api_port):
        return await run_loads(bench, args)


async def run_loads(bench: EndToEnd, args: argparse.Namespace) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    measured: list[list[Sample]] = []
    if args.warmup > 0:
        rate = args.steps[0]
        print(f"  warm-up: {args.warmup:g} s at {rate:g} msg/s (not counted)", file=sys.stderr, flush=True)
        await bench.load(BARE, rate, args.warmup, seed=0)
        await bench.load(STACK, rate, args.warmup, seed=0)
        await bench.drain()
    for i, rate in enumerate(args.steps, 1):
        bench.check_alive()
        bare = await bench.load(BARE, rate, args.seconds, seed=i)
        cpu = bench.cpu()
        cpu.sample()
        stack = await bench.load(STACK, rate, args.seconds, seed=i)
        cpu.sample()
        (t0, _), (t1, _) = cpu.samples[0], cpu.samples[-1]
        used = cpu.used(t0, t1) or {}
        drained = await bench.drain()
        step = {
            STACK: load_figures(stack, rate),
            BARE: load_figures(bare, rate),
            # "bench" is this process: the simulator
            "cpu_cores": {("simulator" if n == "bench" else n): round(c / (t1 - t0), 3) for n, c in used.items()},
            "drain_s": drained,
        }
        step["overhead_ms"] = overhead_ms(step[STACK]["latency_ms"], step[BARE]["latency_ms"])
        steps.append(step)
        measured.append(stack)
        print(f"  step {i}/{len(args.steps)}: {progress_line(step)}", file=sys.stderr, flush=True)
    raw, clean, replies = await bench.produced_at()
    for step, stack in zip(steps, measured):
        step["stages_ms"] = stage_spreads(stack, raw, clean, replies)
    return steps


def _ms(value: float | None, width: int = 8, digits: int = 1) -> str:
    """Milliseconds, or `none` where the percentile fell among messages never answered."""
    return f"{value:>{width},.{digits}f}" if value is not None else f"{'none':>{width}}"


def progress_line(step: dict[str, Any]) -> str:
    s, b, o = step[STACK], step[BARE], step["overhead_ms"]
    return (
        f"{s['offered_rps']:,.0f} msg/s offered, {s['achieved_rps']:,.0f} achieved ({s['achieved_ratio']:.0%});"
        f" stack p50 {_ms(s['latency_ms'].get('p50'), 0, 0)} p99 {_ms(s['latency_ms'].get('p99'), 0, 0)} ms,"
        f" bare p99 {_ms(b['latency_ms'].get('p99'), 0)} ms, overhead p99 {_ms(o.get('p99'), 0, 0)} ms;"
        f" {s['unanswered']:,} unanswered; backlog worked off in {step['drain_s']:.1f} s"
    )


def report(steps: list[dict[str, Any]], args: argparse.Namespace, settings: Settings) -> str:
    knee = find_knee(steps, args.knee_p99_ms)
    p99_at_goal, met = goal_verdict(steps)
    lines = [
        "end to end: a user's safe-mode text message -> its passive reply (echo model), vs a bare aiohttp server",
        f"  stack = `wxstream up` (embedded broker, tritonserver, worker, ingress), {settings.partitions} partitions;",
        "  bare = aiohttp handler answering `success`; load = the WeChat simulator in this process,",
        f"  {args.users:,} users, {args.seconds:g} s per load, open loop, latency from each message's scheduled send;",
        "  `none`: the percentile falls among messages that got no reply",
        f"  NOTE: every process shares this machine's {os.cpu_count()} cores; the last table is what each used",
        "",
        f"  {'offered':>7} {'achieved':>13}  {'stack p50':>9} {'p95':>8} {'p99':>8}  {'bare p50':>8} {'p99':>8}"
        f"  {'overhead p50':>12} {'p99':>8}  {'unanswered':>10}",
    ]
    for step in steps:
        s, b, o = step[STACK], step[BARE], step["overhead_ms"]
        lat, base = s["latency_ms"], b["latency_ms"]
        lines.append(
            f"  {s['offered_rps']:>7,.0f} {s['achieved_rps']:>8,.0f} {s['achieved_ratio']:>4.0%}"
            f"  {_ms(lat.get('p50'), 9)} {_ms(lat.get('p95'))} {_ms(lat.get('p99'))}"
            f"  {_ms(base.get('p50'))} {_ms(base.get('p99'))}  {_ms(o.get('p50'), 12)} {_ms(o.get('p99'))}"
            f"  {s['unanswered']:>10,}"
        )
    lines += [
        "",
        "  time per stage of the answered messages, p50 / p99 ms",
        f"  {'offered':>7}" + "".join(f"{st:>22}" for st in STAGES),
    ]
    for step in steps:
        cells = []
        for stage in STAGES:
            spread = step.get("stages_ms", {}).get(stage)
            cells.append(f"{_ms(spread['p50'], 9)} / {_ms(spread['p99'], 9)}" if spread else f"{'-':>21}")
        lines.append(f"  {step[STACK]['offered_rps']:>7,.0f}" + "".join(f"{c:>22}" for c in cells))
    names = list(steps[0]["cpu_cores"]) if steps else []
    lines += ["", "  cores used while the stack was loaded", f"  {'offered':>7}" + "".join(f"{n:>13}" for n in names)]
    for step in steps:
        lines.append(
            f"  {step[STACK]['offered_rps']:>7,.0f}" + "".join(f"{step['cpu_cores'].get(n, 0):>13.2f}" for n in names)
        )
    knee_text = f"{knee:,.0f} msg/s" if knee is not None else f"none up to {max(args.steps):,.0f} msg/s"
    verdict = "not measured" if met is None else ("PASS" if met else "MISS")
    if met is None:
        at_goal = "not run (no such load in --steps)"
    else:
        at_goal = f"{p99_at_goal:,.1f} ms" if p99_at_goal is not None else "none (over 1% of messages got no reply)"
    lines += [
        "",
        f"  knee (achieved < {KNEE_ACHIEVED:.0%} of offered or stack p99 > {args.knee_p99_ms:g} ms): {knee_text}",
        f"  p99 pipeline overhead at {GOAL_RATE:,.0f} msg/s: {at_goal};"
        f" goal < {GOAL_OVERHEAD_P99_MS:g} ms with every message answered: {verdict}",
    ]
    return "\n".join(lines)


def _rates(text: str) -> list[float]:
    try:
        rates = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--steps takes rates separated by commas, got {text!r}") from None
    if not rates or any(r <= 0 for r in rates):
        raise argparse.ArgumentTypeError("--steps needs at least one rate, all > 0")
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.endtoend", description=description(__doc__))
    parser.add_argument(
        "--steps",
        type=_rates,
        default=_rates("50,100,200,350,500"),
        help="offered loads in msg/s (default 50,100,200,350,500)",
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds of load per step and target (default 3)")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="uncounted seconds at the first load first (default 2)"
    )
    parser.add_argument("--users", type=int, default=1000, help="simulated users sending (default 1000)")
    parser.add_argument("--connections", type=int, default=1024, help="the simulator's connection limit (default 1024)")
    parser.add_argument("--knee-p99-ms", type=float, default=250.0, help="stack p99 that marks the knee (default 250)")
    parser.add_argument(
        "--partitions", type=int, help="partitions of the topics (default: WXSTREAM_PARTITIONS's default)"
    )
    parser.add_argument("--rounds", type=int, help="accepted for a shared `make bench BENCH_ARGS=...`; unused")
    parser.add_argument("--check", action="store_true", help="exit 1 when the goal is missed")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.warmup < 0 or args.users < 1 or args.connections < 1 or args.knee_p99_ms <= 0:
        parser.error("--seconds, --users, --connections and --knee-p99-ms must be > 0, --warmup >= 0")
    if args.partitions is not None and args.partitions < 1:
        parser.error("--partitions must be >= 1")

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="wxstream-bench-e2e-") as tmp:
        bench = EndToEnd(Path(tmp), args)
        try:
            print("end-to-end bench: starting the stack and the bare server ...", file=sys.stderr, flush=True)
            bench.start()
            steps = asyncio.run(run(bench, args))
        finally:
            bench.stop()
    print()
    print(report(steps, args, bench.settings))
    print(f"\n  total time {time.monotonic() - started:.0f} s")

    knee = find_knee(steps, args.knee_p99_ms)
    p99_at_goal, met = goal_verdict(steps)
    record = {
        "benchmark": "endtoend",
        "what": "a user's safe-mode text message to its passive reply through the whole stack (echo model), vs a bare aiohttp server",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {
            "steps_rps": args.steps,
            "seconds": args.seconds,
            "warmup_s": args.warmup,
            "users": args.users,
            "connections": args.connections,
            "partitions": bench.settings.partitions,
            "model": bench.settings.model_name,
            "passive_reply_wait_s": bench.settings.passive_reply_wait_s,
            "knee_p99_ms": args.knee_p99_ms,
            "knee_achieved_ratio": KNEE_ACHIEVED,
        },
        "steps": steps,
        "knee_rps": knee,
        "overhead_p99_at_goal_ms": p99_at_goal,
        "goal": {"rate": GOAL_RATE, "overhead_p99_ms": GOAL_OVERHEAD_P99_MS},
        "pass": met,
        "environment": environment("stack, bare server and the simulator share the same cores"),
    }
    write_results(RESULTS, record)
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
