"""Benchmark: what wxstream's model client adds to a request, against a bare tritonclient
call to the same real tritonserver and model, in the same run; and the tokens/s of the CPU
GLM-4 model through the client.

wxstream  `ModelClient.generate`, built from the default settings as the worker builds
          it: gray-release routing, the circuit breaker, concurrency slots (in total and
          per account), the deadline, the retry loop, the metrics, the request tensors and
          the decoding of `text_output`.
raw       `tritonclient.grpc.aio.InferenceServerClient.infer` with the same tensors,
          requested output and deadline, then `as_numpy` and decode: the least a client
          does. It builds its tensors as wxstream's client does (`text_input` per request,
          the constant ones once), so the difference is the client's own work.

Both call the `echo` model of triton_models/ (it answers with the user's text and costs
next to nothing, so the client's share is as large as it can be), on the embedded
tritonserver started for the run, from one event loop.

Latency (the goal): single requests one at a time, the two clients taking turns request
by request (A B, B A, ...) so that the machine's noise falls on both alike; `--rounds`
rounds of `--seconds` per client. Goal: at p50 over all rounds, wxstream's latency is at
most 1.10 times raw's and less than 0.3 ms above it.

Throughput: `--concurrency` requests at once, as the worker's agents issue them, in slices
that alternate between the clients (bench.timing.compare); requests per second of wall
time, the median of the rounds, and wxstream/raw. Reported, no goal.

Tokens/s (`--glm-requests`, 0 to skip): `glm4_stream`, the tiny random-weight GLM-4 on
CPU (byte tokenizer, greedy, one streamed response per generated token), answering the
same prompt with up to `--glm-tokens` tokens, through the client in streaming mode and
through a raw tritonclient `stream_infer`, alternately. Tokens: the raw stream's responses,
its empty final one left out (both get the same text, which is checked). Figures, medians
over the requests: tokens/s over the whole request (what a user waits for), decode tokens/s
(responses after the first per second since the first: the client's
`wxstream_model_tokens_per_second`) and the first token's latency.

The client, tritonserver and its Python stub share the machine's cores. Results go to
bench/results/model_client.json.

    .venv/bin/python -m bench.model_client [--seconds 1] [--rounds 5] [--concurrency 8]
        [--glm-requests 4] [--glm-tokens 64] [--check]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable, Mapping

from tritonclient.grpc import aio as grpc_aio

from agents.sessions import render_prompt
from app.clients.metrics import ModelMetrics, tokens_per_second
from app.clients.triton import TEXT_OUTPUT, ModelClient, request_inputs
from app.embedded.triton import start_triton
from app.settings import Settings
from bench import description
from bench.load import summarize
from bench.timing import Result, compare, environment, write_results

RESULTS = Path(__file__).resolve().parent / "results" / "model_client.json"
MODEL = "echo"
GLM_MODEL = "glm4_stream"
ACCOUNT = "bench"
TEXT = "明天上午北京南到上海虹桥的G12次高铁还有二等座吗？"
PROMPT = render_prompt("You are a helpful assistant.", (), TEXT)
MAX_TOKENS = 64
TIMEOUT_S = 20.0
WXSTREAM, RAW = "wxstream ModelClient", "raw grpc.aio infer"
SLICE_S = 0.1  # throughput: the clients alternate every SLICE_S of wall time within a round
WARMUP_S = 0.2
GOAL_P50_RATIO = 1.10  # wxstream/raw p50 latency, at most
GOAL_P50_ADDED_MS = 0.3  # wxstream - raw p50 latency, below


@dataclass(frozen=True, slots=True)
class Streamed:
    """One streamed answer: its text, its tokens (None: not counted), its first token's
    latency, its decode speed (None: not measured) and the request's whole time."""

    text: str
    tokens: int | None
    first_token_s: float
    decode_tokens_per_s: float | None
    total_s: float


class Clients:
    """wxstream's clients (echo, and GLM streaming) and the raw one, on one event loop
    that the timed calls run."""

    def __init__(self, url: str, glm_tokens: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.glm_tokens = glm_tokens
        self.model = self._model_client(url, MODEL, stream=False)
        self.glm_metrics = ModelMetrics()
        self.glm = self._model_client(url, GLM_MODEL, stream=True, metrics=self.glm_metrics)
        self.raw = self.loop.run_until_complete(self._raw_client(url))  # a gRPC channel belongs to its loop

    @staticmethod
    def _model_client(url: str, model: str, *, stream: bool, metrics: ModelMetrics | None = None) -> ModelClient:
        settings = Settings(triton_url=url, model_name=model, model_stream=stream, model_timeout_s=TIMEOUT_S)
        return ModelClient.from_settings(settings, metrics)

    @staticmethod
    async def _raw_client(url: str) -> grpc_aio.InferenceServerClient:
        return grpc_aio.InferenceServerClient(url)

    async def wxstream(self, n: int = 0) -> str:
        return await self.model.generate(PROMPT, MAX_TOKENS, account=ACCOUNT, user=f"{ACCOUNT}:o{n}")

    async def bare(self, n: int = 0) -> str:
        result = await self.raw.infer(
            MODEL, request_inputs(PROMPT, MAX_TOKENS), outputs=TEXT_OUTPUT, client_timeout=TIMEOUT_S
        )
        return result.as_numpy("text_output")[0, 0].decode("utf-8")

    async def wxstream_glm(self) -> Streamed:
        """Through the client; the first token and the decode speed are what its metrics
        observed for this request."""
        first_before, rate_before, rated_before = self._glm_sums()
        started = time.perf_counter()
        text = await self.glm.generate(PROMPT, self.glm_tokens, account=ACCOUNT, user=f"{ACCOUNT}:o0")
        total_s = time.perf_counter() - started
        first, rate, rated = self._glm_sums()
        decode = rate - rate_before if rated > rated_before else None
        return Streamed(text, None, first - first_before, decode, total_s)

    def _glm_sums(self) -> tuple[float, float, float]:
        """(first-token sum, tokens/s sum, tokens/s count) of the GLM client's metrics."""
        sample = self.glm_metrics.registry.get_sample_value
        labels = {"model": GLM_MODEL}
        return (
            sample("wxstream_model_first_token_seconds_sum", labels) or 0.0,
            sample("wxstream_model_tokens_per_second_sum", labels) or 0.0,
            sample("wxstream_model_tokens_per_second_count", labels) or 0.0,
        )

    async def raw_glm(self) -> Streamed:
        """Through tritonclient's `stream_infer`: one response per token, then a final one
        that is empty unless it carries text held back."""

        async def one_request():
            yield {
                "model_name": GLM_MODEL,
                "inputs": request_inputs(PROMPT, self.glm_tokens, stream=True),
                "outputs": TEXT_OUTPUT,
            }

        started = time.perf_counter()
        pieces: list[bytes] = []
        arrivals: list[float] = []
        async for result, error in self.raw.stream_infer(one_request(), stream_timeout=TIMEOUT_S):
            if error is not None:
                raise error
            piece = b"".join(result.as_numpy("text_output").reshape(-1))
            final = result.get_response().parameters["triton_final_response"].bool_param
            if piece or not final:
                pieces.append(piece)
                arrivals.append(time.perf_counter() - started)
            if final:
                break
        total_s = time.perf_counter() - started
        if not arrivals:
            raise RuntimeError(f"{GLM_MODEL} streamed no text_output")
        decode = tokens_per_second(len(arrivals), arrivals[0], arrivals[-1])  # as the client's metric
        text = b"".join(pieces).decode("utf-8", errors="replace")
        return Streamed(text, len(pieces), arrivals[0], decode, total_s)

    def concurrent(self, call: Callable[[int], Awaitable[str]], n: int) -> Callable[[], object]:
        async def batch() -> list[str]:
            return await asyncio.gather(*(call(i) for i in range(n)))

        return lambda: self.loop.run_until_complete(batch())

    def close(self) -> None:
        for client in (self.model, self.glm, self.raw):
            self.loop.run_until_complete(client.close())
        self.loop.close()


async def alternate(cases: Mapping[str, Callable[[], Awaitable[object]]], seconds: float) -> dict[str, list[float]]:
    """Latencies of single requests of each case, in seconds, the cases taking turns
    request by request (A B, B A, ...) for about `seconds` each."""
    order = list(cases)
    latencies: dict[str, list[float]] = {name: [] for name in order}
    clock = time.perf_counter
    end = clock() + seconds * len(order)
    while clock() < end:
        for name in order:
            started = clock()
            await cases[name]()
            latencies[name].append(clock() - started)
        order.reverse()
    return latencies


def latency_summary(rounds: list[dict[str, list[float]]]) -> dict[str, object]:
    """p50 (and more) of each client over all rounds, in ms, their ratio and difference
    against the goal, and the same per round to show the spread."""
    pooled = {name: [s for r in rounds for s in r[name]] for name in (WXSTREAM, RAW)}
    ours, raw = summarize(pooled[WXSTREAM]), summarize(pooled[RAW])
    round_p50 = [(summarize(r[WXSTREAM])["p50"], summarize(r[RAW])["p50"]) for r in rounds]
    ratio, added = ours["p50"] / raw["p50"], ours["p50"] - raw["p50"]
    return {
        "unit": "ms",
        "wxstream": {"name": WXSTREAM, "requests": len(pooled[WXSTREAM]), **ours},
        "raw": {"name": RAW, "requests": len(pooled[RAW]), **raw},
        "p50_ratio": ratio,
        "p50_added_ms": added,
        "round_p50_ratios": [a / b for a, b in round_p50],
        "round_p50_added_ms": [a - b for a, b in round_p50],
        "goal": {"p50_ratio_max": GOAL_P50_RATIO, "p50_added_ms_below": GOAL_P50_ADDED_MS},
        "pass": ratio <= GOAL_P50_RATIO and added < GOAL_P50_ADDED_MS,
    }


def throughput_summary(results: dict[str, Result], per_call: int) -> dict[str, object]:
    """Requests/s of both clients (each call is `per_call` requests) and their ratio, the
    median of each interleaved round's ratio."""
    ratios = [a / b for a, b in zip(results[WXSTREAM].rounds, results[RAW].rounds)]
    rps = {name: r.median * per_call for name, r in results.items()}
    return {
        "concurrency": per_call,
        "wxstream": {"name": WXSTREAM, "requests_per_s": rps[WXSTREAM], "spread": results[WXSTREAM].spread},
        "raw": {"name": RAW, "requests_per_s": rps[RAW], "spread": results[RAW].spread},
        "ratio": statistics.median(ratios),
        "round_ratios": ratios,
    }


def glm_summary(answers: dict[str, list[Streamed]], max_tokens: int) -> dict[str, object]:
    """Medians of each way's streamed answers; tokens counted on the raw stream."""
    tokens = answers[RAW][0].tokens or 0

    def figures(streamed: list[Streamed]) -> dict[str, float | None]:
        decode = [s.decode_tokens_per_s for s in streamed if s.decode_tokens_per_s is not None]
        return {
            "tokens_per_s": statistics.median(tokens / s.total_s for s in streamed),
            "decode_tokens_per_s": statistics.median(decode) if decode else None,
            "first_token_ms": statistics.median(s.first_token_s for s in streamed) * 1000,
            "request_ms": statistics.median(s.total_s for s in streamed) * 1000,
        }

    ours, raw = figures(answers[WXSTREAM]), figures(answers[RAW])
    return {
        "model": GLM_MODEL,
        "max_tokens": max_tokens,
        "tokens": tokens,
        "requests": len(answers[WXSTREAM]),
        "wxstream": {"name": f"{WXSTREAM}, streaming", **ours},
        "raw": {"name": "raw grpc.aio stream_infer", **raw},
        "ratio": ours["tokens_per_s"] / raw["tokens_per_s"],
    }


def measure_glm(clients: Clients, requests: int, max_tokens: int) -> dict[str, object]:
    """`requests` answers each way, alternating (A B, B A, ...), after one of each to warm up."""
    ways = {WXSTREAM: clients.wxstream_glm, RAW: clients.raw_glm}
    warm = {name: clients.loop.run_until_complete(way()) for name, way in ways.items()}
    if warm[WXSTREAM].text != warm[RAW].text:
        raise RuntimeError(f"{GLM_MODEL} answered differently: {warm[WXSTREAM].text!r} vs {warm[RAW].text!r}")
    answers: dict[str, list[Streamed]] = {name: [] for name in ways}
    order = list(ways)
    for _ in range(requests):
        for name in order:
            answers[name].append(clients.loop.run_until_complete(ways[name]()))
        order.reverse()
    return glm_summary(answers, max_tokens)


def report(latency: dict, throughput: dict, glm: dict | None, args: argparse.Namespace) -> str:
    ours, raw = latency["wxstream"], latency["raw"]
    lines = [
        f"model client: wxstream ModelClient vs a raw tritonclient grpc.aio call, `{MODEL}` model,",
        f"  embedded tritonserver; {args.rounds} rounds of {args.seconds:g} s per client",
        "",
        f"  sequential latency, ms ({ours['requests']:,} and {raw['requests']:,} requests, taking turns)",
        f"  {'case':<24} {'p50':>7} {'p90':>7} {'p99':>7}",
    ]
    for case in (ours, raw):
        lines.append(f"  {case['name']:<24} {case['p50']:>7.3f} {case['p90']:>7.3f} {case['p99']:>7.3f}")
    ratios, added = latency["round_p50_ratios"], latency["round_p50_added_ms"]
    lines += [
        f"  p50 wxstream/raw {latency['p50_ratio']:.3f} ({min(ratios):.3f}..{max(ratios):.3f} by round), "
        f"goal <= {GOAL_P50_RATIO:.2f}",
        f"  p50 added {latency['p50_added_ms'] * 1000:+.0f} us ({min(added) * 1000:+.0f}..{max(added) * 1000:+.0f}), "
        f"goal < {GOAL_P50_ADDED_MS * 1000:.0f} us   {'PASS' if latency['pass'] else 'MISS'}",
        "",
        f"  {throughput['concurrency']} concurrent, requests/s of wall time (median of rounds)",
    ]
    for key in ("wxstream", "raw"):
        case = throughput[key]
        lines.append(f"  {case['name']:<24} {case['requests_per_s']:>7,.0f}   spread {case['spread']:.0%}")
    ratios = throughput["round_ratios"]
    lines.append(f"  ratio wxstream/raw {throughput['ratio']:.2f} ({min(ratios):.2f}..{max(ratios):.2f})")
    if glm is not None:
        lines += [
            "",
            f"  {glm['model']} on CPU, {glm['tokens']} tokens an answer (max {glm['max_tokens']}), "
            f"median of {glm['requests']} requests",
            f"  {'case':<34} {'tokens/s':>9} {'decode':>9} {'first ms':>9}",
        ]
        for key in ("wxstream", "raw"):
            case = glm[key]
            decode = case["decode_tokens_per_s"]
            lines.append(
                f"  {case['name']:<34} {case['tokens_per_s']:>9.1f} "
                f"{decode if decode is not None else float('nan'):>9.1f} {case['first_token_ms']:>9.1f}"
            )
        lines.append(f"  tokens/s wxstream/raw {glm['ratio']:.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.model_client", description=description(__doc__))
    parser.add_argument("--seconds", type=float, default=1.0, help="wall seconds per client per round (default 1.0)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each measurement (default 5)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="requests at once in the throughput load, all of one account (default 8: an account's slots)",
    )
    parser.add_argument(
        "--glm-requests", type=int, default=4, help=f"{GLM_MODEL} answers per client for tokens/s (default 4; 0: skip)"
    )
    parser.add_argument("--glm-tokens", type=int, default=64, help="max_tokens of those answers (default 64)")
    parser.add_argument("--check", action="store_true", help="exit 1 when the latency goal is missed")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.rounds < 1 or args.concurrency < 1 or args.glm_requests < 0 or args.glm_tokens < 2:
        parser.error("--seconds must be > 0, --rounds and --concurrency >= 1, --glm-requests >= 0, --glm-tokens >= 2")

    models = (MODEL, GLM_MODEL) if args.glm_requests else (MODEL,)
    with tempfile.TemporaryDirectory(prefix="wxstream-bench-model-client-") as work:
        data = Path(work)
        proc, url = start_triton(Settings().triton_models, data, data / "logs", models=models)
        try:
            clients = Clients(url, args.glm_tokens)
            try:
                for call in (clients.wxstream, clients.bare):  # both must get the same answer
                    answer = clients.loop.run_until_complete(call(0))
                    if answer != TEXT:
                        raise RuntimeError(f"{MODEL} answered {answer!r}, expected {TEXT!r}")
                cases = {WXSTREAM: clients.wxstream, RAW: clients.bare}
                clients.loop.run_until_complete(alternate(cases, WARMUP_S))
                rounds = []
                for _ in range(args.rounds):
                    gc.collect()
                    rounds.append(clients.loop.run_until_complete(alternate(cases, args.seconds)))
                concurrent = compare(
                    {
                        WXSTREAM: clients.concurrent(clients.wxstream, args.concurrency),
                        RAW: clients.concurrent(clients.bare, args.concurrency),
                    },
                    seconds=args.seconds,
                    rounds=args.rounds,
                    slice_s=SLICE_S,
                )
                glm = measure_glm(clients, args.glm_requests, args.glm_tokens) if args.glm_requests else None
            finally:
                clients.close()
        finally:
            proc.stop()

    latency = latency_summary(rounds)
    throughput = throughput_summary(concurrent, args.concurrency)
    print(report(latency, throughput, glm, args))
    record = {
        "benchmark": "model_client",
        "what": "latency of single requests through wxstream's ModelClient vs a raw tritonclient grpc.aio infer, "
        "echo model; throughput with concurrent requests; tokens/s of the CPU GLM-4 model through the client",
        "unit": "ms (latency), requests per wall second (throughput), tokens per second (glm)",
        "clock": "time.perf_counter",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {
            "seconds": args.seconds,
            "rounds": args.rounds,
            "concurrency": args.concurrency,
            "model": MODEL,
            "glm_requests": args.glm_requests,
            "glm_tokens": args.glm_tokens,
        },
        # the headline, in the form bench.report reads: p50 latency, less is better
        "candidate": {"name": WXSTREAM, "p50_ms": latency["wxstream"]["p50"]},
        "baseline": {"name": RAW, "p50_ms": latency["raw"]["p50"]},
        "ratio": latency["p50_ratio"],
        "goal": latency["goal"],
        "pass": latency["pass"],
        "latency": latency,
        "throughput": throughput,
        "glm": glm,
        "environment": environment("the bench (both clients), tritonserver and its Python stub share the same cores"),
    }
    write_results(RESULTS, record)
    return 1 if args.check and not latency["pass"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
