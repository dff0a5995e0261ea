"""Expired windows an earlier run left in the local stores, which Faust's cleanup does not
know of, are deleted; live windows and tables without expiry are left alone."""

from __future__ import annotations

from datetime import timedelta

from app.settings import Settings
from tables.windowed import expiring, sweep_expired_windows
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
    assert sweep_expired_windows(expiring(app.tables.values()), NOW) == 2
    assert sorted(table.data.keys()) == sorted([("a", recent), ("a", current)])
    assert dict(plain.items()) == {"x": 1}
    assert sweep_expired_windows(expiring(app.tables.values()), NOW) == 0
