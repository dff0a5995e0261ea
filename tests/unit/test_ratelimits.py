"""The counters behind the rate limits: per account per second in memory, per user per
minute in a windowed table (`count_message`)."""

from __future__ import annotations

from tables.ratelimits import RECENT_KEYS, PerSecondCounter, count_message


def test_counts_per_key_within_a_second_and_forgets_earlier_seconds():
    now = [100.2]
    counter = PerSecondCounter(clock=lambda: now[0])
    assert [counter.add("a"), counter.add("a"), counter.add("b")] == [1, 2, 1]
    now[0] = 100.9
    assert counter.add("a") == 3
    now[0] = 101.0
    assert counter.add("a") == 1
    assert counter.add((0, "shop")) == 1 and counter.add((1, "shop")) == 1


def test_messages_are_counted_in_order_and_one_counted_again_keeps_its_place():
    counted: list = []
    places = []
    for message in ("m1", "m2", "m3"):
        place, stored = count_message(counted, message, stop_at=11)
        places.append(place)
        counted = stored
    assert places == [1, 2, 3] and counted == [3, ["m1", "m2", "m3"]]
    assert count_message(counted, "m2", stop_at=11) == (2, None), "processed again after a crash"


def test_past_the_stop_the_count_stays_and_every_message_is_over():
    counted = [11, [f"m{i}" for i in range(1, 12)]]
    assert count_message(counted, "m12", stop_at=11) == (12, None)
    assert count_message(counted, "m11", stop_at=11) == (11, None)


def test_only_the_last_keys_are_kept_so_the_value_stays_small():
    counted: list = []
    for i in range(1, RECENT_KEYS + 6):
        _, counted = count_message(counted, f"m{i}", stop_at=10**6)
    assert counted[0] == RECENT_KEYS + 5 and len(counted[1]) == RECENT_KEYS
    assert count_message(counted, "m1", stop_at=10**6)[0] == RECENT_KEYS + 6, "too old to be known: counted again"
