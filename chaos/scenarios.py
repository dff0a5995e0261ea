"""The chaos scenarios, in the order `make chaos` runs them, each on a fresh stack."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

from chaos.attacks import fuzz_ingress, hostile_flood
from chaos.faults import broker_pause, triton_kill, worker_kill
from chaos.harness import ChaosStack
from chaos.load import Progress
from chaos.options import ChaosOptions
from chaos.result import Findings, ScenarioResult

__all__ = ("Scenario", "SCENARIOS", "by_name", "run_scenario")


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    run: Callable[[ChaosStack, ChaosOptions, Progress], Awaitable[Findings]]


SCENARIOS = (
    Scenario("worker-kill", "kill -9 the worker mid-load, restart it: answered once, sessions intact", worker_kill),
    Scenario("triton-kill", "kill tritonserver mid-load, restart it: fallback, then real replies", triton_kill),
    Scenario("broker-pause", "freeze the broker mid-load: the ingress spools, no accepted message lost", broker_pause),
    Scenario("hostile", "forged signatures, replays, oversized and hostile XML beside real users", hostile_flood),
    Scenario("fuzz", "random requests on the ingress's HTTP surface: no 5xx, nothing produced", fuzz_ingress),
)


def by_name(names: list[str]) -> list[Scenario]:
    known = {s.name: s for s in SCENARIOS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[n] for n in names]


async def run_scenario(
    scenario: Scenario,
    options: ChaosOptions,
    work: Path,
    write: Callable[[str], None],
    progress_every_s: float = 5.0,
) -> ScenarioResult:
    """Start a fresh stack in `work`, run the scenario on it, stop the stack. A scenario
    that fails to run to its end is a failed result, so that the others still run."""
    started = time.monotonic()
    progress = Progress(scenario.name, write, progress_every_s)
    progress.note(f"starting a fresh stack: {scenario.title}")
    try:
        async with ChaosStack(work, partitions=options.partitions, echo=lambda line: None) as h:
            progress.note("stack ready")
            found = await scenario.run(h, options, progress)
    except Exception as exc:
        progress.note(f"stopped by {type(exc).__name__}: {exc}")
        return ScenarioResult.crashed(scenario.name, scenario.title, exc, time.monotonic() - started)
    return ScenarioResult.of(scenario.name, scenario.title, found, time.monotonic() - started)
