"""Throughput measurement shared by the benchmarks.

`compare` times several cases (zero-argument callables) in the same process. Each round
gives every case the same wall time (or the same number of calls), cut into short slices
that alternate between the cases (A B, B A, A B, ...), so that machine noise such as other
processes, frequency scaling or thermal drift falls on every case alike; a case's figure
for the round is its calls over its time summed across its slices. The figure of a case is
the median of its rounds.

Time is read from `clock`: wall time (`time.perf_counter`) by default; CPU-bound code on
a shared machine is better timed with `time.thread_time`, which leaves out the time the
thread spent descheduled (a slice then also ends after `WALL_CAP` times its length of wall
time, so a starved run still ends).

The garbage collector stays enabled, as it is in the service, because allocation-heavy
code pays for it; a full collection runs before every round.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Callable, Mapping, Sequence

__all__ = (
    "Result",
    "compare",
    "measure_round",
    "calibrate",
    "environment",
    "cpu_seconds",
    "clean_env",
    "command_line",
    "write_results",
)

ROOT = Path(__file__).resolve().parent.parent

BATCH_S = 0.005  # a timed slice reads the clock once per batch of about this long
WALL_CAP = 4.0
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Result:
    """Operations per second of one case, one figure per round."""

    name: str
    rounds: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.rounds)

    @property
    def us_per_op(self) -> float:
        return 1e6 / self.median

    @property
    def spread(self) -> float:
        """(max - min) / median of the rounds: how noisy the figure is."""
        return (max(self.rounds) - min(self.rounds)) / self.median

    def as_dict(self) -> dict[str, object]:
        return {
            "ops_per_s": self.median,
            "us_per_op": self.us_per_op,
            "rounds_ops_per_s": list(self.rounds),
            "spread": self.spread,
        }


def calibrate(fn: Callable[[], object], batch_s: float = BATCH_S, clock: Clock = time.perf_counter) -> int:
    """How many calls of `fn` take about `batch_s` (at least 1)."""
    n = 1
    while True:
        start = clock()
        for _ in repeat(None, n):
            fn()
        elapsed = clock() - start
        if elapsed >= batch_s / 4 or n >= 1 << 24:
            return max(1, round(n * batch_s / max(elapsed, 1e-9)))
        n *= 4


def measure_round(
    fn: Callable[[], object],
    *,
    seconds: float | None = None,
    number: int | None = None,
    batch: int = 1,
    clock: Clock = time.perf_counter,
) -> tuple[int, float]:
    """Run `fn` for `seconds` of `clock` time (read every `batch` calls) or for `number`
    calls; returns (calls, elapsed `clock` seconds)."""
    if (seconds is None) == (number is None):
        raise ValueError("give exactly one of seconds and number")
    if number is not None:
        start = clock()
        for _ in repeat(None, number):
            fn()
        return number, clock() - start
    calls = 0
    wall_deadline = time.perf_counter() + seconds * WALL_CAP
    start = clock()
    deadline = start + seconds
    while True:
        for _ in repeat(None, batch):
            fn()
        calls += batch
        now = clock()
        if now >= deadline or time.perf_counter() >= wall_deadline:
            return calls, now - start


def compare(
    cases: Mapping[str, Callable[[], object]],
    *,
    seconds: float = 1.0,
    number: int | None = None,
    rounds: int = 5,
    slice_s: float = 0.05,
    warmup_s: float = 0.2,
    clock: Clock = time.perf_counter,
) -> dict[str, Result]:
    """Time every case for `rounds` interleaved rounds of `seconds` each (in slices of about
    `slice_s`); with `number`, each round is that many calls per case instead, in one slice.
    Returns each case's Result, in the order given."""
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    names = list(cases)
    batches = {}
    for name in names:  # warm caches and lazy imports, then size the batches
        measure_round(cases[name], seconds=warmup_s, batch=calibrate(cases[name], clock=clock), clock=clock)
        batches[name] = calibrate(cases[name], clock=clock)
    slices = 1 if number is not None else max(1, round(seconds / slice_s))
    per_slice = None if number is not None else seconds / slices
    figures: dict[str, list[float]] = {name: [] for name in names}
    turn = 0
    for _ in range(rounds):
        calls = dict.fromkeys(names, 0)
        elapsed = dict.fromkeys(names, 0.0)
        gc.collect()
        for _ in range(slices):
            for name in names if turn % 2 == 0 else reversed(names):
                n, t = measure_round(cases[name], seconds=per_slice, number=number, batch=batches[name], clock=clock)
                calls[name] += n
                elapsed[name] += t
            turn += 1
        for name in names:
            figures[name].append(calls[name] / elapsed[name])
    return {name: Result(name, tuple(figures[name])) for name in names}


def environment(note: str) -> dict[str, object]:
    """Where a benchmark ran, for its results file; `note` says what shared the cores."""
    return {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(), "note": note}


def cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) process `pid` has used, or None once it is gone."""
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def clean_env() -> dict[str, str]:
    """This process's environment without `WXSTREAM_*` variables: a benchmark runs with the
    settings it chooses, not with whatever the calling shell exports."""
    return {k: v for k, v in os.environ.items() if not k.startswith("WXSTREAM_")}


def command_line(argv: Sequence[str] | None = None) -> str:
    """How this benchmark was started, as a command to run again from the repository root
    (`python -m bench.<name>` puts the module's file path in argv[0])."""
    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0]).resolve()
    if script.suffix != ".py" or not script.is_relative_to(ROOT):
        return shlex.join(argv)
    module = ".".join(script.relative_to(ROOT).with_suffix("").parts)
    return shlex.join([".venv/bin/python", "-m", module, *argv[1:]])


def write_results(path: Path, record: Mapping[str, object]) -> None:
    """Write a benchmark's machine-readable results, with the command that reproduces them,
    and say where they went."""
    record = {**record, "command": record.get("command") or command_line()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
    print(f"\n  results written to {shown}")
