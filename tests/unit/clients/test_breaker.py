"""The circuit breaker as a pure state machine over a fake clock."""

from __future__ import annotations

import pytest

from app.clients.breaker import CLOSED, HALF_OPEN, OPEN, STATE_VALUES, CircuitBreaker, Permit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def breaker(clock: Clock, failures: int = 3, cooldown: float = 10.0, probes: int = 1, changes=None) -> CircuitBreaker:
    on_change = (lambda old, new: changes.append((old, new))) if changes is not None else None
    return CircuitBreaker(failures, cooldown, probes, clock=clock, on_change=on_change)


def fail(b: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        permit = b.acquire()
        assert permit is not None
        b.failure(permit)


def open_breaker(clock: Clock, **kwargs) -> CircuitBreaker:
    b = breaker(clock, **kwargs)
    fail(b, b.failure_threshold)
    assert b.state == OPEN
    return b


# --- closed --------------------------------------------------------------------------


def test_starts_closed_and_lets_calls_through(clock):
    b = breaker(clock)
    assert b.state == CLOSED
    permits = [b.acquire() for _ in range(100)]
    assert all(p is not None and not p.probe for p in permits)
    assert b.retry_after() == 0.0


def test_opens_after_the_threshold_of_consecutive_failures(clock):
    b = breaker(clock, failures=3)
    fail(b, 2)
    assert b.state == CLOSED and b.consecutive_failures == 2
    fail(b)
    assert b.state == OPEN


def test_a_success_resets_the_consecutive_count(clock):
    b = breaker(clock, failures=3)
    fail(b, 2)
    b.success(b.acquire())
    assert b.consecutive_failures == 0
    fail(b, 2)
    assert b.state == CLOSED
    fail(b)
    assert b.state == OPEN


def test_threshold_of_one_opens_on_the_first_failure(clock):
    b = breaker(clock, failures=1)
    fail(b)
    assert b.state == OPEN


def test_release_while_closed_changes_nothing(clock):
    b = breaker(clock, failures=2)
    fail(b)
    b.release(b.acquire())
    assert b.state == CLOSED and b.consecutive_failures == 1


# --- open ----------------------------------------------------------------------------


def test_open_refuses_every_call_until_the_cooldown_passes(clock):
    b = open_breaker(clock, cooldown=10.0)
    for _ in range(5):
        assert b.acquire() is None
        clock.advance(1.9)
    assert b.state == OPEN and b.acquire() is None
    assert b.retry_after() == pytest.approx(0.5)


def test_retry_after_counts_down(clock):
    b = open_breaker(clock, cooldown=10.0)
    assert b.retry_after() == 10.0
    clock.advance(4)
    assert b.retry_after() == 6.0
    clock.advance(100)
    assert b.retry_after() == 0.0


def test_after_the_cooldown_the_breaker_reads_half_open_without_changing(clock):
    changes: list = []
    b = open_breaker(clock, cooldown=10.0, changes=changes)
    clock.advance(10.0)
    assert b.state == HALF_OPEN
    assert changes == [(CLOSED, OPEN)], "reading the state is not a transition"


def test_zero_cooldown_goes_half_open_at_once(clock):
    b = breaker(clock, failures=1, cooldown=0.0)
    fail(b)
    assert b.state == HALF_OPEN
    assert b.acquire().probe


# --- half-open -----------------------------------------------------------------------


def test_half_open_lets_only_the_configured_probes_through(clock):
    b = open_breaker(clock, probes=2)
    clock.advance(10)
    first, second = b.acquire(), b.acquire()
    assert first.probe and second.probe
    assert b.acquire() is None
    assert b.probes_in_flight == 2


def test_a_successful_probe_closes_the_breaker(clock):
    b = open_breaker(clock)
    clock.advance(10)
    probe = b.acquire()
    b.success(probe)
    assert b.state == CLOSED
    assert b.consecutive_failures == 0
    assert all(not b.acquire().probe for _ in range(10))


def test_a_failed_probe_opens_it_again_for_a_full_cooldown(clock):
    b = open_breaker(clock, cooldown=10.0)
    clock.advance(15)
    b.failure(b.acquire())
    assert b.state == OPEN
    assert b.retry_after() == 10.0
    clock.advance(9.99)
    assert b.acquire() is None
    clock.advance(0.01)
    assert b.acquire().probe


def test_a_released_probe_frees_its_place(clock):
    b = open_breaker(clock, probes=1)
    clock.advance(10)
    probe = b.acquire()
    assert b.acquire() is None
    b.release(probe)
    assert b.state == HALF_OPEN
    assert b.acquire() is not None


def test_release_of_a_probe_twice_does_not_go_below_zero(clock):
    b = open_breaker(clock, probes=1)
    clock.advance(10)
    probe = b.acquire()
    b.release(probe)
    b.release(probe)
    assert b.probes_in_flight == 0
    assert b.acquire() is not None and b.acquire() is None


# --- reports from an earlier period ----------------------------------------------------


def test_a_stale_failure_does_not_reopen_a_half_open_breaker(clock):
    b = breaker(clock, failures=2)
    slow = b.acquire()  # a call that started while closed...
    fail(b, 2)
    clock.advance(10)
    probe = b.acquire()
    b.failure(slow)  # ...and ends now, long after the server died
    assert b.state == HALF_OPEN
    b.success(probe)
    assert b.state == CLOSED


def test_a_stale_success_does_not_close_a_half_open_breaker(clock):
    b = breaker(clock, failures=1)
    slow = b.acquire()
    fail(b)
    clock.advance(10)
    b.acquire()
    b.success(slow)
    assert b.state == HALF_OPEN


def test_stale_reports_while_open_change_nothing(clock):
    b = breaker(clock, failures=2)
    late = [b.acquire() for _ in range(5)]
    fail(b, 2)
    opened_for = b.retry_after()
    clock.advance(1)
    for permit in late:
        b.failure(permit)
    assert b.state == OPEN and b.retry_after() == opened_for - 1


def test_stale_reports_after_closing_do_not_count_against_the_new_period(clock):
    b = breaker(clock, failures=2)
    late = b.acquire()
    fail(b, 2)
    clock.advance(10)
    b.success(b.acquire())
    b.failure(late)
    assert b.consecutive_failures == 0


def test_permits_are_plain_values():
    assert Permit(3, probe=True) == Permit(3, probe=True)


def test_calls_while_closed_share_one_permit_per_period(clock):
    b = breaker(clock, failures=1)
    assert b.acquire() is b.acquire()
    before = b.acquire()
    fail(b)
    clock.advance(10)
    b.success(b.acquire())
    assert b.state == CLOSED and b.acquire() != before


# --- the whole cycle, and what is reported ----------------------------------------------


def test_transitions_are_reported_in_order(clock):
    changes: list = []
    b = breaker(clock, failures=2, changes=changes)
    fail(b, 2)
    clock.advance(10)
    b.failure(b.acquire())
    clock.advance(10)
    b.success(b.acquire())
    assert changes == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]


def test_state_values_order_states_by_severity():
    assert STATE_VALUES[CLOSED] < STATE_VALUES[HALF_OPEN] < STATE_VALUES[OPEN]


@pytest.mark.parametrize(
    "kwargs", [{"failure_threshold": 0}, {"cooldown_s": -1}, {"half_open_probes": 0}], ids=["threshold", "cooldown", "probes"]
)
def test_rejects_invalid_configuration(kwargs):
    config = {"failure_threshold": 3, "cooldown_s": 1.0, "half_open_probes": 1, **kwargs}
    with pytest.raises(ValueError):
        CircuitBreaker(**config)


def test_uses_the_monotonic_clock_by_default():
    b = CircuitBreaker(1, 60.0)
    b.failure(b.acquire())
    assert 59 < b.retry_after() <= 60
