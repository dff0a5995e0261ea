"""`seen`: dedupe keys already published, so WeChat's retries and replays stop here.

A tumbling-window table whose window is the dedupe TTL: a key is looked up in the
current window and the one before, so any repeat within the TTL is caught, and Faust's
table cleanup purges windows older than twice the TTL. Key: `<account>:<dedupe key>`;
value: when the event was first accepted (unix s). The changelog is co-partitioned with
the user-keyed event topics.
"""

from __future__ import annotations

from datetime import timedelta

import faust

from app.settings import Settings

__all__ = ("seen_table", "SEEN_TABLE")

SEEN_TABLE = "seen-v1"


def seen_table(app: faust.App, settings: Settings) -> faust.types.tables.WindowWrapperT:
    ttl = settings.dedupe_ttl_s
    return app.Table(
        SEEN_TABLE,
        key_type=str,
        value_type=float,
        default=float,
        partitions=settings.partitions,
        help="dedupe keys already published to the clean topic",
    ).tumbling(ttl, expires=timedelta(seconds=2 * ttl))
