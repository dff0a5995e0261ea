"""The bounded part of the chaos run (`make chaos` runs all of it, longer): the worker
killed with kill -9 under load, the hostile flood and a short fuzz run, each on a fresh
stack. Every accepted message is answered exactly once, sessions survive, nothing
hostile is produced, nothing answers 5xx."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos.options import ChaosOptions
from chaos.report import table
from chaos.result import ScenarioResult
from chaos.scenarios import by_name, run_scenario

pytestmark = pytest.mark.integration

BOUNDED = ChaosOptions(
    messages=100,
    rate=10.0,
    users=10,
    attack_messages=20,
    hostile_rounds=2,
    fuzz_requests=300,
    settle_s=90.0,
    quiet_s=3.0,
    partitions=2,
)


async def run(name: str, work: Path) -> ScenarioResult:
    (scenario,) = by_name([name])
    result = await run_scenario(scenario, BOUNDED, work, print, progress_every_s=2.0)
    assert result.passed, f"\n{table([result])}\n{json.dumps(dict(result.figures), indent=2, ensure_ascii=False)}"
    return result


async def test_worker_killed_mid_load_answers_each_message_once_and_keeps_sessions(tmp_path: Path):
    result = await run("worker-kill", tmp_path)
    assert result.sent >= BOUNDED.messages and result.answered_once == result.sent
    assert result.figures["worker_down_s"] > 0
    assert any(check.name.startswith("sessions intact") and check.ok for check in result.checks)


async def test_hostile_requests_are_refused_and_replays_deduplicated(tmp_path: Path):
    result = await run("hostile", tmp_path)
    assert result.rejected == result.figures["hostile_requests"] > 0
    assert result.figures["replays"] == BOUNDED.attack_messages


async def test_fuzzed_requests_get_no_5xx_and_produce_nothing_when_refused(tmp_path: Path):
    result = await run("fuzz", tmp_path)
    statuses = result.figures["statuses"]
    assert sum(statuses.values()) == BOUNDED.fuzz_requests
    assert not any(status.startswith("5") or status == "None" for status in statuses), statuses
