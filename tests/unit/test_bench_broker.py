"""The broker benchmark's summary (medians per partition, their ratio, the broker's CPU per
stored batch) and its section of the performance page, built from that same summary."""

from __future__ import annotations

import pytest

from bench import report
from bench.broker import FRESH, LOADED, summarise


def _round(fresh_rate: float, loaded_rate: float, fresh_cpu_ms: float, loaded_cpu_ms: float) -> dict:
    return {
        FRESH: {"round_trips_per_s": fresh_rate, "p50_ms": 1000 / fresh_rate, "broker_cpu_ms_per_round_trip": fresh_cpu_ms},
        LOADED: {"round_trips_per_s": loaded_rate, "p50_ms": 1000 / loaded_rate, "broker_cpu_ms_per_round_trip": loaded_cpu_ms},
    }


def test_summary_takes_medians_and_charges_the_difference_to_the_stored_batches():
    rounds = [_round(500, 40, 0.8, 22.8), _round(600, 50, 0.7, 20.7), _round(400, 10, 0.9, 30.0)]

    summary = summarise(rounds, batches=20_000)

    assert summary["ratio"] == pytest.approx(40 / 500)
    assert summary["round_ratios"] == pytest.approx([40 / 500, 50 / 600, 10 / 400])
    assert summary["cases"][LOADED]["broker_cpu_ms_per_round_trip"] == 22.8
    assert summary["broker_cpu_us_per_stored_batch"] == pytest.approx((22.8 - 0.8) * 1000 / 20_000)
    assert summary["candidate"]["ops_per_s"] == 40 and summary["baseline"]["ops_per_s"] == 500


def test_the_performance_page_shows_the_cost_per_stored_batch():
    record = {
        "benchmark": "broker",
        "what": "round trips on a partition of many batches vs a fresh one",
        "when": "2026-11-25T22:00:00+0000",
        "config": {"batches": 20_000, "probes": 100, "rounds": 1},
        **summarise([_round(550, 40, 0.8, 22.8)], batches=20_000),
        "environment": {"python": "3.11.7", "machine": "x86_64"},
        "command": ".venv/bin/python -m bench.broker",
    }

    (section,) = report.sections({"broker": record})

    assert section.title == "Embedded broker"
    assert [(f.measured, f.baseline, f.ratio) for f in section.figures] == [
        ("40", "550 (fresh partition)", "7.3%"),
        ("22.80", "0.80", "-"),
        ("1.10", "-", "-"),
    ]
    assert all(f.met is None for f in section.figures)  # no goal: it describes the broker
