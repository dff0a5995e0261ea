"""Expired windows that Faust's own cleanup does not know of, deleted.

Faust purges a windowed table's expired windows, but only those written since the worker
started: it registers a window for purging when it is set, so the windows a worker finds
in its local store from an earlier run, or restores from a changelog, stay for good
(faust-streaming#385), and every restart leaves the local stores bigger. The sweep
deletes every expired window in the local stores of the partitions this worker serves,
locally only, as Faust's cleanup does: in Kafka the changelog's retention removes them.
"""

from __future__ import annotations

import logging
import time
from typing import Iterable

import faust

__all__ = ("install_window_sweep", "sweep_expired_windows")

log = logging.getLogger("wxstream.tables.windowed")


def expiring(tables: Iterable[faust.types.tables.CollectionT]) -> list[faust.types.tables.CollectionT]:
    """The windowed tables whose windows expire."""
    return [table for table in tables if table.window is not None and table.window.expires]


def sweep_expired_windows(tables: Iterable[faust.types.tables.CollectionT], now: float) -> int:
    """Delete the expired windows of `tables` (windowed, expiring) from their local stores;
    returns how many. A window's key is `(key, (start, end))`, a list once stored."""
    removed = 0
    for table in tables:
        expired = [key for key in table.data.keys() if table.window.stale(key[1][1], now)]
        for key in expired:
            table.data.pop(key, None)
        removed += len(expired)
    return removed


def install_window_sweep(app: faust.App, every_s: float) -> None:
    """Sweep the app's expiring windowed tables every `every_s`, once their recovery is done."""

    @app.timer(every_s, name="wxstream.window_sweep")
    async def sweep() -> None:
        if not app.tables.recovery.completed.is_set() or app.rebalancing:
            return
        started = time.perf_counter()
        removed = sweep_expired_windows(expiring(app.tables.values()), time.time())
        if removed:
            log.info("deleted %d expired windows left by earlier runs in %.2fs", removed, time.perf_counter() - started)
