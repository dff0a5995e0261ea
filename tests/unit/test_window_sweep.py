"""Expired windows an earlier run left in the local stores, which Faust's cleanup does not
know of, are deleted; live windows and tables without expiry are left alone; the event
loop keeps running while a big store is swept."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from app.settings import Settings
from tables.windowed import DELETE_CHUNK, expiring, sweep_expired_windows
from tests.unit.agents.faust_harness import AgentHarness

NOW = 1_800_000_000.0


async def test_expired_windows_are_deleted_and_live_ones_kept():
    app = AgentHarness(Settings(partitions=1)).app
    table = app.Table("sweep-test", default=int).tumbling(60, expires=timedelta(seconds=120)).table
    plain = app.Table("plain-test", default=int)
    old, recent, current = (table.window.current(NOW - age) for age in (600, 90, 0))
    # As the local store holds them after a restart: written by an earlier run.
    table.raw_update({("a", old): 1, ("b", old): 2, ("a", recent): 3, ("a", current): 4})
    plain.raw_update({"x": 1})

    assert expiring(app.tables.values()) == [table]
    assert await sweep_expired_windows(expiring(app.tables.values()), NOW) == 2
    assert sorted(table.data.keys()) == sorted([("a", recent), ("a", current)])
    assert dict(plain.items()) == {"x": 1}
    assert await sweep_expired_windows(expiring(app.tables.values()), NOW) == 0


async def test_the_event_loop_runs_between_the_steps_of_a_big_sweep():
    app = AgentHarness(Settings(partitions=1)).app
    table = app.Table("big-sweep", default=int).tumbling(60, expires=timedelta(seconds=120)).table
    old = table.window.current(NOW - 600)
    table.raw_update({(f"user-{i}", old): 1 for i in range(10 * DELETE_CHUNK)})
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    running = asyncio.ensure_future(ticker())
    try:
        assert await sweep_expired_windows([table], NOW) == 10 * DELETE_CHUNK
    finally:
        running.cancel()
    assert ticks >= 10  # at least once per step of deletes
    assert not list(table.data.keys())
