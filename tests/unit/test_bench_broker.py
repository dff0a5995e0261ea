"""The broker benchmark's summary: medians per partition, their ratio, and the broker's
CPU per stored batch."""

from __future__ import annotations

import pytest

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
