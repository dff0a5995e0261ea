"""The simulator's clock: wall time plus an offset that tests move forward.

WeChat's time-based rules (token lifetime, the 48 h reply window, the daily quota) are
judged on this clock, so a test can jump hours ahead without waiting. Callbacks are still
signed with the real time: the ingress checks their timestamps against its own clock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

__all__ = ("SimClock",)

DAY_S = 86400


@dataclass
class SimClock:
    offset_s: float = 0.0
    wall: Callable[[], float] = time.time  # a constant makes tests exact

    def now(self) -> float:
        return self.wall() + self.offset_s

    def advance(self, seconds: float) -> float:
        """Move the clock forward (never back) and return the new time."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self.offset_s += seconds
        return self.now()

    def day(self) -> int:
        """Index of the current day, for daily quotas."""
        return int(self.now() // DAY_S)
