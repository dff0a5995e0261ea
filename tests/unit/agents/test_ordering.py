"""Jobs run concurrently across keys, one after another within a key, at most `limit` at once."""

from __future__ import annotations

import asyncio

import pytest

from agents.ordering import KeyedTasks


class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}

    async def job(self, name: str) -> None:
        self.events.append(f"start {name}")
        gate = self.gates.setdefault(name, asyncio.Event())
        await gate.wait()
        self.events.append(f"end {name}")

    def release(self, name: str) -> None:
        self.gates.setdefault(name, asyncio.Event()).set()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_jobs_of_different_keys_run_at_the_same_time():
    tasks, rec = KeyedTasks(limit=4), Recorder()
    await tasks.submit("alice", rec.job("a1"))
    await tasks.submit("bob", rec.job("b1"))
    await settle()
    assert rec.events == ["start a1", "start b1"]
    rec.release("a1"), rec.release("b1")
    await tasks.drain()


async def test_a_keys_jobs_run_one_after_another_in_submit_order():
    tasks, rec = KeyedTasks(limit=4), Recorder()
    for name in ("a1", "a2", "a3"):
        await tasks.submit("alice", rec.job(name))
    await settle()
    assert rec.events == ["start a1"]
    rec.release("a2"), rec.release("a3")  # finished early, they still wait for a1
    await settle()
    assert rec.events == ["start a1"]
    rec.release("a1")
    await tasks.drain()
    assert rec.events == ["start a1", "end a1", "start a2", "end a2", "start a3", "end a3"]


async def test_a_failed_job_does_not_stop_the_next_one_of_its_key():
    tasks, rec = KeyedTasks(limit=2), Recorder()

    async def fails() -> None:
        raise RuntimeError("handled by the job's owner")

    await tasks.submit("alice", fails())
    await tasks.submit("alice", rec.job("a2"))
    rec.release("a2")
    await tasks.drain()
    assert rec.events == ["start a2", "end a2"]


async def test_submit_waits_while_backlog_jobs_are_unfinished():
    tasks, rec = KeyedTasks(limit=2, backlog=2), Recorder()
    await tasks.submit("alice", rec.job("a1"))
    await tasks.submit("bob", rec.job("b1"))
    third = asyncio.ensure_future(tasks.submit("carol", rec.job("c1")))
    await settle()
    assert not third.done() and tasks.running == 2
    rec.release("b1")
    await settle()
    assert third.done()
    rec.release("a1"), rec.release("c1")
    await tasks.drain()
    assert tasks.running == 0


async def test_drain_gives_up_after_the_timeout():
    tasks, rec = KeyedTasks(limit=1), Recorder()
    await tasks.submit("alice", rec.job("a1"))
    await tasks.drain(timeout=0.01)
    assert tasks.running == 1
    rec.release("a1")
    await tasks.drain()


async def test_no_more_than_limit_jobs_run_at_once():
    tasks, rec = KeyedTasks(limit=2), Recorder()
    for name in ("a1", "b1", "c1"):
        await tasks.submit(name, rec.job(name))
    await settle()
    assert rec.events == ["start a1", "start b1"] and tasks.running == 3
    rec.release("a1")
    await settle()
    assert rec.events[-1] == "start c1"
    rec.release("b1"), rec.release("c1")
    await tasks.drain()


async def test_one_keys_queued_jobs_leave_the_slots_to_other_keys():
    tasks, rec = KeyedTasks(limit=2), Recorder()
    for name in ("a1", "a2", "a3", "a4"):  # a1 is slow; a2..a4 wait for it
        await tasks.submit("alice", rec.job(name))
    await asyncio.wait_for(tasks.submit("bob", rec.job("b1")), 1.0)
    await settle()
    assert rec.events == ["start a1", "start b1"]
    for name in ("b1", "a1", "a2", "a3", "a4"):
        rec.release(name)
    await tasks.drain()


@pytest.mark.parametrize(("limit", "backlog"), [(0, None), (0, 4), (4, 2)])
def test_the_limit_is_at_least_one_and_at_most_the_backlog(limit, backlog):
    with pytest.raises(ValueError):
        KeyedTasks(limit=limit, backlog=backlog)
