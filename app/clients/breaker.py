"""A circuit breaker: a pure state machine over an injected clock, no I/O, no asyncio.

closed:    calls pass; `failure_threshold` consecutive failures (timeouts included) open it.
open:      calls are refused at once; after `cooldown_s` the next caller finds it half-open.
half-open: at most `half_open_probes` calls pass at a time; a success closes the breaker,
           a failure opens it again for another cool-down.

A caller takes a permit with `acquire()` (None: refused) and reports how its call ended
with `success`, `failure` or `release` (the call proved nothing either way, e.g. it was
cancelled or the request itself was invalid). A permit belongs to the period in which it
was taken: reports for permits of an earlier period (say, a slow call started before the
breaker opened) change nothing, so a stale failure cannot reopen a breaker whose probe is
still out, nor a stale success close it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

__all__ = ("CLOSED", "HALF_OPEN", "OPEN", "STATE_VALUES", "CircuitBreaker", "Permit")

CLOSED, HALF_OPEN, OPEN = "closed", "half_open", "open"
# The value of the state gauge: ordered by severity.
STATE_VALUES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}


@dataclass(frozen=True)
class Permit:
    """Leave to make one call; `probe` when taken while half-open."""

    period: int
    probe: bool


class CircuitBreaker:
    def __init__(
        self,
        failure_threshold: int,
        cooldown_s: float,
        half_open_probes: int = 1,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, str], None] | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        if cooldown_s < 0:
            raise ValueError("cooldown_s must be >= 0")
        if half_open_probes < 1:
            raise ValueError("half_open_probes must be >= 1")
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self.half_open_probes = half_open_probes
        self._clock = clock
        self._on_change = on_change
        self._state = CLOSED
        self._period = 0  # bumped on every state change
        self._failures = 0  # consecutive, while closed
        self._opened_at = 0.0
        self._probes = 0  # probes out, while half-open
        self._closed_permit = Permit(self._period, probe=False)

    @property
    def state(self) -> str:
        """The state a caller arriving now would find (an open breaker whose cool-down
        has passed reads half-open). Reading it changes nothing."""
        if self._state == OPEN and self._cooled_down():
            return HALF_OPEN
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    @property
    def probes_in_flight(self) -> int:
        return self._probes if self._state == HALF_OPEN else 0

    def retry_after(self) -> float:
        """Seconds until an open breaker lets a probe through; 0 when not open."""
        if self._state != OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.cooldown_s - self._clock())

    def acquire(self) -> Permit | None:
        """A permit for one call, or None when the call must not be made."""
        if self._state == CLOSED:  # every call while closed shares one permit: it is immutable
            return self._closed_permit
        if self._state == OPEN:
            if not self._cooled_down():
                return None
            self._move(HALF_OPEN)
        if self._probes >= self.half_open_probes:  # half-open
            return None
        self._probes += 1
        return Permit(self._period, probe=True)

    def success(self, permit: Permit) -> None:
        if permit.period != self._period:
            return
        if self._state == HALF_OPEN:
            self._move(CLOSED)
        elif self._state == CLOSED:
            self._failures = 0

    def failure(self, permit: Permit) -> None:
        if permit.period != self._period:
            return
        if self._state == HALF_OPEN:
            self._open()
        elif self._state == CLOSED:
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self._open()

    def release(self, permit: Permit) -> None:
        """The call ended without saying anything about the server's health."""
        if permit.period == self._period and self._state == HALF_OPEN and permit.probe:
            self._probes = max(0, self._probes - 1)

    def _cooled_down(self) -> bool:
        return self._clock() - self._opened_at >= self.cooldown_s

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._move(OPEN)

    def _move(self, state: str) -> None:
        previous, self._state = self._state, state
        self._period += 1
        self._failures = 0
        self._probes = 0
        self._closed_permit = Permit(self._period, probe=False)
        if self._on_change is not None:
            self._on_change(previous, state)
