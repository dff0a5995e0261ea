"""The in-memory per-second counter behind the per-account rate limit."""

from __future__ import annotations

from tables.ratelimits import PerSecondCounter


def test_counts_per_key_within_a_second_and_forgets_earlier_seconds():
    now = [100.2]
    counter = PerSecondCounter(clock=lambda: now[0])
    assert [counter.add("a"), counter.add("a"), counter.add("b")] == [1, 2, 1]
    now[0] = 100.9
    assert counter.add("a") == 3
    now[0] = 101.0
    assert counter.add("a") == 1
    assert counter.add((0, "shop")) == 1 and counter.add((1, "shop")) == 1
