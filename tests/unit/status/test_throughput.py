"""Events per second per agent from successive counter samples."""

from __future__ import annotations

import pytest

from app.status.throughput import ThroughputMeter


def test_no_rate_from_a_single_sample():
    meter = ThroughputMeter()
    assert meter.sample({"wxstream.dedupe": 40.0}, now=100.0) == {}


def test_rates_over_the_time_between_samples():
    meter = ThroughputMeter()
    meter.sample({"wxstream.dedupe": 40.0}, now=100.0)
    rates = meter.sample({"wxstream.dedupe": 65.0, "wxstream.conversation": 10.0}, now=105.0)
    assert rates == {"wxstream.dedupe": pytest.approx(5.0), "wxstream.conversation": pytest.approx(2.0)}
    assert meter.rates is rates


def test_an_idle_agent_goes_to_zero():
    meter = ThroughputMeter()
    meter.sample({"wxstream.dedupe": 40.0}, now=100.0)
    meter.sample({"wxstream.dedupe": 50.0}, now=105.0)
    assert meter.sample({"wxstream.dedupe": 50.0}, now=110.0) == {"wxstream.dedupe": 0.0}


def test_a_sample_at_the_same_instant_keeps_the_last_rates():
    meter = ThroughputMeter()
    meter.sample({"a": 0.0}, now=100.0)
    meter.sample({"a": 10.0}, now=102.0)
    assert meter.sample({"a": 12.0}, now=102.0) == {"a": pytest.approx(5.0)}
