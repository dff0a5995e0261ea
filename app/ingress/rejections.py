"""Logging rejected callbacks without letting a flood of them flood the log.

Every rejection is counted in metrics; the log gets the first of each (account, reason)
and then at most one line per `interval_s`, saying how many it left out meanwhile, so that
anyone on the internet sending forged or stale requests costs a few lines a minute.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

__all__ = ("RejectionLog",)

log = logging.getLogger("wxstream.ingress")


class RejectionLog:
    def __init__(self, interval_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._last: dict[tuple[str, str], float] = {}  # when each (account, reason) was last logged
        self._left_out: dict[tuple[str, str], int] = {}

    def rejected(self, method: str, account: str, reason: str, detail: str) -> None:
        key = (account, reason)
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval_s:
            self._left_out[key] = self._left_out.get(key, 0) + 1
            return
        self._last[key] = now
        left_out = self._left_out.pop(key, 0)
        more = f"; {left_out} more like it in the last {now - last:.0f}s" if left_out and last is not None else ""
        log.info("rejected %s callback for %s: %s (%s)%s", method, account or "?", reason, detail, more)
