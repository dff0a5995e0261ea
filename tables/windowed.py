"""Expired windows that Faust's own cleanup does not know of, deleted.

Faust purges a windowed table's expired windows, but only those written since the worker
started: it registers a window for purging when it is set, so the windows a worker finds
in its local store from an earlier run, or restores from a changelog, stay for good
(faust-streaming#385), and every restart leaves the local stores bigger. The sweep
deletes every expired window in the local stores of the partitions this worker serves,
locally only, as Faust's cleanup does: in Kafka the changelog's retention removes them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Iterable

import faust

__all__ = ("install_window_sweep", "sweep_expired_windows")

log = logging.getLogger("wxstream.tables.windowed")

DELETE_CHUNK = 500  # windows deleted per step; the event loop runs between steps


def expiring(tables: Iterable[faust.types.tables.CollectionT]) -> list[faust.types.tables.CollectionT]:
    """The windowed tables whose windows expire."""
    return [table for table in tables if table.window is not None and table.window.expires]


async def sweep_expired_windows(tables: Iterable[faust.types.tables.CollectionT], now: float) -> int:
    """Delete the expired windows of `tables` (windowed, expiring) from their local stores;
    returns how many. A window's key is `(key, (start, end))`, a list once stored.

    A store can hold hundreds of thousands of windows, seconds of work to scan: the scan
    runs in a thread, which RocksDB allows beside the event loop's reads and writes, and
    the deletes go in small steps on the loop, so the agents keep running meanwhile."""
    removed = 0
    for table in tables:
        expired = await asyncio.to_thread(_expired_keys, table, now)
        for start in range(0, len(expired), DELETE_CHUNK):
            for key in expired[start : start + DELETE_CHUNK]:
                table.data.pop(key, None)
            await asyncio.sleep(0)
        removed += len(expired)
    return removed


def _expired_keys(table: faust.types.tables.CollectionT, now: float) -> list:
    return [key for key in table.data.keys() if table.window.stale(key[1][1], now)]


def install_window_sweep(app: faust.App, every_s: float) -> None:
    """Sweep the app's expiring windowed tables every `every_s`, once their recovery is done."""

    @app.timer(every_s, name="wxstream.window_sweep")
    async def sweep() -> None:
        if not app.tables.recovery.completed.is_set() or app.rebalancing:
            return
        started = time.perf_counter()
        try:
            removed = await sweep_expired_windows(expiring(app.tables.values()), time.time())
        except RuntimeError as exc:  # a rebalance changed the stores under the scan
            log.info("window sweep cut short (%s); the next one goes on", exc)
            return
        if removed:
            log.info("deleted %d expired windows left by earlier runs in %.2fs", removed, time.perf_counter() - started)
