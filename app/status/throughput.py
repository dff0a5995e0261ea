"""Events per second per agent from successive samples of their event counters (pure)."""

from __future__ import annotations

from typing import Mapping

__all__ = ("ThroughputMeter",)


class ThroughputMeter:
    """Keeps the previous sample; each new one yields the rates over the time between them."""

    def __init__(self) -> None:
        self._previous: Mapping[str, float] = {}
        self._previous_at: float | None = None
        self.rates: dict[str, float] = {}

    def sample(self, counts: Mapping[str, float], now: float) -> dict[str, float]:
        if self._previous_at is not None and now > self._previous_at:
            elapsed = now - self._previous_at
            self.rates = {
                name: max(count - self._previous.get(name, 0.0), 0.0) / elapsed for name, count in counts.items()
            }
        self._previous, self._previous_at = dict(counts), now
        return self.rates
