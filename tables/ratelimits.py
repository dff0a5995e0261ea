"""Windowed counters behind the per-user and per-account rate limits.

`user_minute`: messages per user per minute, and whether that user was already told
they are over the limit in this window. `account_second`: messages per account per
second, counted per partition (each partition enforces its share of the account's
limit). Old windows expire and are purged by Faust's table cleanup.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import faust

from app.settings import Settings

__all__ = ("RateTables", "USER_WINDOW_S", "ACCOUNT_WINDOW_S")

USER_WINDOW_S = 60.0
ACCOUNT_WINDOW_S = 1.0


@dataclass(frozen=True)
class RateTables:
    user_count: faust.types.tables.WindowWrapperT
    user_notified: faust.types.tables.WindowWrapperT
    account_count: faust.types.tables.WindowWrapperT

    @classmethod
    def declare(cls, app: faust.App, settings: Settings) -> "RateTables":
        def windowed(name: str, default: type, window: float, help: str):
            return app.Table(
                name, key_type=str, default=default, partitions=settings.partitions, help=help
            ).tumbling(window, expires=timedelta(seconds=window * 3))

        return cls(
            user_count=windowed("rate-user-v1", int, USER_WINDOW_S, "messages per user per minute"),
            user_notified=windowed("rate-notice-v1", bool, USER_WINDOW_S, "users told of the limit this minute"),
            account_count=windowed("rate-account-v1", int, ACCOUNT_WINDOW_S, "messages per account per second"),
        )
