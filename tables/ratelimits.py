"""Counters behind the per-user and per-account rate limits.

`user_count`/`user_notified`: the messages counted per user per minute (how many, and the
dedupe keys of the last few: `count_message`), and the message whose reply told the user
they are over the limit in this window: windowed tables, changelogged (a restart must not
hand a user a fresh minute), old windows purged by Faust's cleanup.
`account_count`: messages per account per second, per partition (each partition enforces
its share of the account's limit). It lives in memory: a one-second window lost in a
restart costs nothing, and keeping it out of a changelog saves a write per message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable, Hashable, Sequence

import faust

from app.settings import Settings

__all__ = ("RateTables", "PerSecondCounter", "RECENT_KEYS", "USER_WINDOW_S", "count_message")

USER_WINDOW_S = 60.0
RECENT_KEYS = 16  # dedupe keys kept per user and window, to know a message processed again


def count_message(counted: Sequence, message: str, stop_at: int) -> tuple[int, list | None]:
    """Count `message` (a dedupe key) in a user's window, whose value is `counted`
    (`[count, [the last dedupe keys]]`, or empty for a new window). Returns the message's
    place in the window and the value to store, or None when nothing changes: a message
    processed again after a crash (one of the last RECENT_KEYS) keeps its place, so it gets
    the same verdict, and past `stop_at` the count stays (the verdict is the same for all)."""
    count, recent = (counted[0], counted[1]) if counted else (0, [])
    if message in recent:
        return count - len(recent) + recent.index(message) + 1, None
    if count >= stop_at:
        return count + 1, None
    return count + 1, [count + 1, [*recent, message][-RECENT_KEYS:]]


@dataclass
class PerSecondCounter:
    """Counts per key within the current wall-clock second; earlier seconds are forgotten."""

    clock: Callable[[], float] = time.time
    _second: int = field(default=-1, init=False)
    _counts: dict[Hashable, int] = field(default_factory=dict, init=False)

    def add(self, key: Hashable) -> int:
        """Count one for `key` and return its count in this second, this one included."""
        second = int(self.clock())
        if second != self._second:
            self._second, self._counts = second, {}
        count = self._counts[key] = self._counts.get(key, 0) + 1
        return count


@dataclass(frozen=True)
class RateTables:
    user_count: faust.types.tables.WindowWrapperT
    user_notified: faust.types.tables.WindowWrapperT
    account_count: PerSecondCounter

    @classmethod
    def declare(cls, app: faust.App, settings: Settings) -> "RateTables":
        def windowed(name: str, default: type, window: float, help: str):
            return app.Table(
                name, key_type=str, default=default, partitions=settings.partitions, help=help
            ).tumbling(window, expires=timedelta(seconds=window * 3))

        return cls(
            user_count=windowed("rate-user-v2", list, USER_WINDOW_S, "messages per user per minute"),
            user_notified=windowed("rate-notice-v2", str, USER_WINDOW_S, "the message that told the user of the limit"),
            account_count=PerSecondCounter(),
        )
