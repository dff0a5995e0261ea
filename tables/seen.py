"""`seen`: dedupe keys already published, so WeChat's retries and replays stop here.

Key: `<account>:<dedupe key>`; value: when the event was first accepted (unix s). Its
changelog is co-partitioned with the user-keyed event topics, so the row lives on the
partition of the user whose event wrote it.
"""

from __future__ import annotations

import faust

from app.settings import Settings

__all__ = ("seen_table", "SEEN_TABLE")

SEEN_TABLE = "seen-v1"


def seen_table(app: faust.App, settings: Settings) -> faust.Table:
    return app.Table(
        SEEN_TABLE,
        key_type=str,
        value_type=float,
        partitions=settings.partitions,
        help="dedupe keys already published to the clean topic",
    )
