"""Waiting until a table's changes are safe in the broker, from jobs that overlap."""

from __future__ import annotations

import asyncio

from app.settings import Settings
from tables.acked import AckedTable
from tests.unit.agents.faust_harness import AgentHarness


async def test_overlapping_callers_each_wait_for_every_change_made_before_they_called():
    app = AgentHarness(Settings(partitions=1)).app
    table = app.tables.add(AckedTable(app, name="acked-test", default=int))
    loop = asyncio.get_running_loop()
    first_write, second_write = loop.create_future(), loop.create_future()
    table._track(first_write)
    table._track(second_write)  # another job's change, made before either caller asked

    first = asyncio.ensure_future(table.persisted())
    second = asyncio.ensure_future(table.persisted())
    await asyncio.sleep(0)
    assert not first.done() and not second.done()
    first_write.set_result(None)
    second_write.set_result(None)
    await asyncio.gather(first, second)
    assert table._unacked == []
