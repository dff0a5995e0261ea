"""`--since` / `--until` values: a duration back from now (`10m`, `1h30m`, `2d`) or a date
and time (`2026-11-25T10:00`, local time unless it names a zone: `...Z`, `...+08:00`).

Pure: the caller passes `now`, so one command reads every value against the same instant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

__all__ = ("TimeRangeError", "TimeRange", "parse_instant", "parse_range")

_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)([smhd]))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


class TimeRangeError(ValueError):
    """A `--since` / `--until` value that is neither a duration nor a date and time."""


def parse_instant(text: str, now: float) -> float:
    """Unix seconds of `text`: `now`, a duration before `now`, or an ISO 8601 date/time."""
    value = text.strip().lower()
    if value == "now":
        return now
    if _DURATION.fullmatch(value):
        return now - sum(float(n) * _UNIT_S[unit] for n, unit in _DURATION_PART.findall(value))
    try:
        return datetime.fromisoformat(text.strip()).timestamp()  # naive: local time
    except ValueError:
        raise TimeRangeError(
            f"{text!r} is not a time: use a duration back from now (30s, 10m, 1h30m, 2d), "
            "a date and time (2026-11-25T10:00, local; 2026-11-25T02:00Z) or `now`"
        ) from None


@dataclass(frozen=True)
class TimeRange:
    """Record timestamps `since <= t < until`, in unix seconds; None: unbounded."""

    since: float | None = None
    until: float | None = None

    def contains_ms(self, timestamp_ms: int) -> bool:
        t = timestamp_ms / 1000
        return (self.since is None or t >= self.since) and (self.until is None or t < self.until)

    @property
    def since_ms(self) -> int | None:
        return None if self.since is None else int(self.since * 1000)


def parse_range(since: str | None, until: str | None, now: float) -> TimeRange:
    """Both ends read against the same `now`; an empty or inverted range is an error."""
    bounds = TimeRange(
        parse_instant(since, now) if since else None,
        parse_instant(until, now) if until else None,
    )
    if bounds.since is not None and bounds.until is not None and bounds.since >= bounds.until:
        raise TimeRangeError(f"--since {since} is not before --until {until}: the range is empty")
    return bounds
