"""Chaos run: every scenario in turn, each on a fresh stack, then the summary table.

`python -m chaos` (`make chaos`). Results go to bench/results/chaos.json. Exits 1 when a
message was lost or answered twice, or any other check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import tempfile
import time
from dataclasses import asdict, fields
from pathlib import Path

from bench.timing import environment, write_results
from chaos.options import ChaosOptions
from chaos.report import table
from chaos.result import ScenarioResult
from chaos.scenarios import SCENARIOS, by_name, run_scenario

RESULTS = Path(__file__).resolve().parent.parent / "bench" / "results" / "chaos.json"
DEFAULTS = ChaosOptions()


def _parser() -> argparse.ArgumentParser:
    names = ", ".join(s.name for s in SCENARIOS)
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.split("\n")[0])
    parser.add_argument("scenarios", nargs="*", help=f"which to run (default: all): {names}")
    for name, text in (
        ("messages", "users' messages per scenario under load"),
        ("rate", "messages per second"),
        ("users", "simulated users"),
        ("seed", "seed of the users, their messages, the hostile and fuzzed requests"),
        ("fault-at", "when the fault strikes, as a share of the load's duration"),
        ("outage-s", "seconds tritonserver stays down or the broker frozen"),
        ("settle-s", "longest wait for the last answers after the load"),
        ("quiet-s", "seconds with nothing more arriving before the answers are counted"),
        ("attack-messages", "users' messages beside the hostile flood and after the fuzz run"),
        ("hostile-rounds", "times the hostile catalogue is sent"),
        ("fuzz-requests", "fuzzed requests"),
        ("concurrency", "hostile or fuzzed requests in flight"),
        ("partitions", "partitions of the topics"),
    ):
        default = getattr(DEFAULTS, name.replace("-", "_"))
        shown = "that of WXSTREAM_PARTITIONS" if default is None else default
        kind = type(default) if default is not None else int
        parser.add_argument(f"--{name}", type=kind, default=default, help=f"{text} (default {shown})")
    parser.add_argument("--progress-s", type=float, default=5.0, help="seconds between progress lines (default 5)")
    parser.add_argument(
        "--work-dir", type=Path, help="keep each scenario's data and logs here (default: a temporary directory)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        options = ChaosOptions(**{f.name: getattr(args, f.name) for f in fields(ChaosOptions)})
        scenarios = by_name(args.scenarios) if args.scenarios else list(SCENARIOS)
    except ValueError as exc:
        parser.error(str(exc))

    def write(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    started = time.monotonic()
    results: list[ScenarioResult] = []
    with tempfile.TemporaryDirectory(prefix="wxstream-chaos-") as tmp:
        work = args.work_dir.resolve() if args.work_dir else Path(tmp)
        for scenario in scenarios:
            result = asyncio.run(run_scenario(scenario, options, work / scenario.name, write, args.progress_s))
            results.append(result)
            write(f"  [{scenario.name}] {'PASS' if result.passed else 'FAIL'} in {result.seconds:.0f}s")
    print()
    print(f"chaos: {', '.join(s.name for s in scenarios)}; load: {options.messages:,} messages at {options.rate:g}/s")
    print(table(results))
    print(f"\n  total time {time.monotonic() - started:.0f} s")
    write_results(
        RESULTS,
        {
            "benchmark": "chaos",
            "what": "faults and attacks on the whole stack: is every accepted message answered exactly once?",
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "config": asdict(options),
            "scenarios": [r.as_dict() for r in results],
            "pass": all(r.passed for r in results),
            "environment": environment("the stack and the simulator share the same cores"),
            "command": shlex.join([".venv/bin/python", "-m", "chaos", *(sys.argv[1:] if argv is None else argv)]),
        },
    )
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
