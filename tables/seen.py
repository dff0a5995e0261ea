"""`seen`: dedupe keys already published, so WeChat's retries and replays stop here.

A tumbling-window table whose window is the dedupe TTL: a key is looked up in the
current window and the one before, so any repeat within the TTL is caught, and Faust's
table cleanup purges windows older than twice the TTL. Key: `<account>:<dedupe key>`;
value: the position (`<partition>@<offset>`) of the raw record that was published, so
that this record, processed again after a crash, is published again while any other copy
is dropped. The changelog is co-partitioned with the user-keyed raw topic, which puts
every copy of a message in the same partition.
"""

from __future__ import annotations

from datetime import timedelta

import faust

from app.settings import Settings

__all__ = ("seen_table", "SEEN_TABLE")

SEEN_TABLE = "seen-v2"


def seen_table(app: faust.App, settings: Settings) -> faust.types.tables.WindowWrapperT:
    ttl = settings.dedupe_ttl_s
    return app.Table(
        SEEN_TABLE,
        key_type=str,
        value_type=str,
        default=str,
        partitions=settings.partitions,
        help="dedupe keys already published to the clean topic",
    ).tumbling(ttl, expires=timedelta(seconds=2 * ttl))
