"""Benchmark: what wxstream's model client adds to a request, against a bare tritonclient
call to the same real tritonserver and model, in the same run.

wxstream  `ModelClient.generate`, built from the default settings as the worker builds
          it: gray-release routing, the circuit breaker, concurrency slots (in total and
          per account), the deadline (event-loop timer and gRPC deadline), the retry loop,
          the metrics, the request tensors and the decoding of `text_output`.
raw       `tritonclient.grpc.aio.InferenceServerClient.infer` with the same tensors,
          requested output and deadline, then `as_numpy` and decode: the least a client does.

Both call the `echo` model of triton_models/ (it answers with the user's text and costs
next to nothing), on the embedded tritonserver started for the run, from one event loop.
Two loads: sequential (one request at a time: the latency the client adds) and concurrent
(`--concurrency` requests at once, as the worker's agents issue them: throughput). The
cases alternate in short slices within each round (bench.timing.compare); figures are
requests per second of wall time, the median of the rounds; the ratio is wxstream/raw
(1.00: the client costs nothing). Goal: ratio >= 0.8 under both loads, with a model that
costs nothing (a real model's milliseconds to seconds dwarf what the client adds); the
results file's headline is the load with the lower ratio. The client, tritonserver and its Python stub share the
machine's cores. Results go to bench/results/model_client.json.

    .venv/bin/python -m bench.model_client [--seconds 1] [--rounds 5] [--concurrency 8] [--check]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Awaitable, Callable

from tritonclient.grpc import aio as grpc_aio

from agents.sessions import render_prompt
from app.clients.triton import ModelClient, request_inputs
from app.embedded.triton import start_triton
from app.settings import Settings
from bench.timing import Result, compare, environment, write_results

RESULTS = Path(__file__).resolve().parent / "results" / "model_client.json"
MODEL = "echo"
ACCOUNT = "bench"
TEXT = "明天上午北京南到上海虹桥的G12次高铁还有二等座吗？"
PROMPT = render_prompt("You are a helpful assistant.", (), TEXT)
MAX_TOKENS = 64
TIMEOUT_S = 20.0
WXSTREAM, RAW = "wxstream ModelClient", "raw grpc.aio infer"
SLICE_S = 0.1  # the cases alternate every SLICE_S of wall time within a round
GOAL = 0.8


class Clients:
    """Both clients, on one event loop that the timed calls run."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.url = url
        self.model = self.loop.run_until_complete(self._model_client())
        self.raw = self.loop.run_until_complete(self._raw_client())

    async def _model_client(self) -> ModelClient:
        return ModelClient.from_settings(Settings(triton_url=self.url, model_name=MODEL))

    async def _raw_client(self) -> grpc_aio.InferenceServerClient:
        return grpc_aio.InferenceServerClient(self.url)

    async def wxstream(self, n: int = 0) -> str:
        return await self.model.generate(PROMPT, MAX_TOKENS, account=ACCOUNT, user=f"{ACCOUNT}:o{n}")

    async def bare(self, n: int = 0) -> str:
        result = await self.raw.infer(
            MODEL,
            request_inputs(PROMPT, MAX_TOKENS),
            outputs=[grpc_aio.InferRequestedOutput("text_output")],
            client_timeout=TIMEOUT_S,
        )
        return result.as_numpy("text_output")[0, 0].decode("utf-8")

    def sequential(self, call: Callable[[int], Awaitable[str]]) -> Callable[[], object]:
        return lambda: self.loop.run_until_complete(call(0))

    def concurrent(self, call: Callable[[int], Awaitable[str]], n: int) -> Callable[[], object]:
        async def batch() -> list[str]:
            return await asyncio.gather(*(call(i) for i in range(n)))

        return lambda: self.loop.run_until_complete(batch())

    def close(self) -> None:
        self.loop.run_until_complete(self.model.close())
        self.loop.run_until_complete(self.raw.close())
        self.loop.close()


def paired_ratios(results: dict[str, Result]) -> list[float]:
    """wxstream/raw of each round: both ran interleaved in it, under the same noise."""
    return [a / b for a, b in zip(results[WXSTREAM].rounds, results[RAW].rounds)]


def summary(results: dict[str, Result], per_call: int) -> dict[str, object]:
    """Requests/s of both cases (each call is `per_call` requests) and their ratio."""
    ratios = paired_ratios(results)
    rps = {name: r.median * per_call for name, r in results.items()}
    return {
        "requests_per_call": per_call,
        "wxstream": {"name": WXSTREAM, "requests_per_s": rps[WXSTREAM], **results[WXSTREAM].as_dict()},
        "raw": {"name": RAW, "requests_per_s": rps[RAW], **results[RAW].as_dict()},
        "ratio": statistics.median(ratios),
        "ratio_basis": "median of round_ratios (wxstream/raw of each interleaved round)",
        "round_ratios": ratios,
        "overhead_us_per_request": (1 / rps[WXSTREAM] - 1 / rps[RAW]) * 1e6,
        "pass": statistics.median(ratios) >= GOAL,
    }


def report(loads: dict[str, dict[str, object]], args: argparse.Namespace) -> str:
    lines = [
        f"model client: wxstream ModelClient vs a raw tritonclient grpc.aio call, `{MODEL}` model",
        f"  on the embedded tritonserver; {args.rounds} rounds of {args.seconds:g} s per case,",
        f"  interleaved in {SLICE_S * 1000:g} ms slices; wall time",
        "",
        f"  {'load':<22} {'case':<22} {'req/s':>8} {'us/req':>8}   spread",
    ]
    for load, figures in loads.items():
        for key in ("wxstream", "raw"):
            case = figures[key]
            lines.append(
                f"  {load:<22} {case['name']:<22} {case['requests_per_s']:>8,.0f} "
                f"{1e6 / case['requests_per_s']:>8.0f}   {case['spread']:.1%}"
            )
        ratios = figures["round_ratios"]
        lines.append(
            f"  {'':<22} ratio wxstream/raw {figures['ratio']:>11.2f}   ({min(ratios):.2f}..{max(ratios):.2f}; "
            f"{figures['overhead_us_per_request']:+.0f} us per request)   goal >= {GOAL:.2f}   "
            f"{'PASS' if figures['pass'] else 'MISS'}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.model_client", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="wall seconds per case per round (default 1.0)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the median is reported (default 5)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="requests at once in the concurrent load, all of one account (default 8: an account's slots)",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a ratio misses the goal")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.rounds < 1 or args.concurrency < 1:
        parser.error("--seconds must be > 0, --rounds and --concurrency >= 1")

    with tempfile.TemporaryDirectory(prefix="wxstream-bench-model-client-") as work:
        data = Path(work)
        proc, url = start_triton(Settings().triton_models, data, data / "logs", models=(MODEL,))
        try:
            clients = Clients(url)
            try:
                for call in (clients.wxstream, clients.bare):  # both must get the same answer
                    answer = clients.loop.run_until_complete(call(0))
                    if answer != TEXT:
                        raise RuntimeError(f"{MODEL} answered {answer!r}, expected {TEXT!r}")
                timing = dict(seconds=args.seconds, rounds=args.rounds, slice_s=SLICE_S)
                sequential = compare(
                    {WXSTREAM: clients.sequential(clients.wxstream), RAW: clients.sequential(clients.bare)}, **timing
                )
                concurrent = compare(
                    {
                        WXSTREAM: clients.concurrent(clients.wxstream, args.concurrency),
                        RAW: clients.concurrent(clients.bare, args.concurrency),
                    },
                    **timing,
                )
            finally:
                clients.close()
        finally:
            proc.stop()

    loads = {
        "sequential": summary(sequential, 1),
        f"{args.concurrency} concurrent": summary(concurrent, args.concurrency),
    }
    headline = min(loads.values(), key=lambda figures: figures["ratio"])
    passed = all(figures["pass"] for figures in loads.values())
    print(report(loads, args))
    record = {
        "benchmark": "model_client",
        "what": "requests/s through wxstream's ModelClient vs a raw tritonclient grpc.aio infer, echo model",
        "unit": "requests per wall second",
        "clock": "time.perf_counter",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {"seconds": args.seconds, "rounds": args.rounds, "concurrency": args.concurrency, "model": MODEL},
        # the headline (the load with the lower ratio), in the form bench.report reads
        "candidate": {"name": WXSTREAM, "ops_per_s": headline["wxstream"]["requests_per_s"]},
        "baseline": {"name": RAW, "ops_per_s": headline["raw"]["requests_per_s"]},
        "ratio": headline["ratio"],
        "goal": GOAL,
        "pass": passed,
        "loads": loads,
        "environment": environment("the bench (both clients), tritonserver and its Python stub share the same cores"),
    }
    write_results(RESULTS, record)
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    raise SystemExit(main())
