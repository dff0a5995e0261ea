"""Open-loop traffic from a population of users to the ingress.

Messages are due on a fixed timeline, `rate` per second, whether or not earlier ones were
answered, and latency runs from the due time, so a slow server cannot slow the load down
and hide its own queueing. A user's own messages go out in the order they were written:
one waits until the previous delivery of that user is over, as WeChat's users see their
chat in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import aiohttp

from app.simulator.callbacks import CallbackSender, Timing
from app.simulator.messages import MessageFactory
from app.simulator.population import Mix, User, population
from app.simulator.report import Report
from app.simulator.state import SimState

__all__ = ("TrafficPlan", "drive")


@dataclass(frozen=True)
class TrafficPlan:
    rate: float  # messages per second, all accounts together
    users: int = 10  # per account
    count: int | None = None  # stop after this many messages ...
    duration_s: float | None = None  # ... or after this long, whichever comes first
    mix: Mix = field(default_factory=Mix)
    accounts: tuple[str, ...] = ()  # empty: every account of the state
    seed: int = 0
    max_connections: int = 256
    # A user's next message waits until the previous delivery ended; False: it goes out on
    # time regardless (the most load, but a user's answers may then cross).
    in_order: bool = True

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError("rate must be > 0")
        if self.count is None and self.duration_s is None:
            raise ValueError("a plan needs a count or a duration")
        if self.users < 1 or self.max_connections < 1:
            raise ValueError("a plan needs at least one user and one connection")


async def drive(
    state: SimState,
    ingress_url: str,
    plan: TrafficPlan,
    *,
    timing: Timing = Timing(),
    on_tick: Callable[[Report], None] | None = None,
) -> Report:
    """Send the plan's messages and wait for every delivery to end; `on_tick` sees the
    report once a second."""
    users = population(plan.accounts or tuple(state.accounts), plan.users, plan.seed)
    factory = MessageFactory(seed=plan.seed)
    kinds = random.Random(f"mix:{plan.seed}")
    locks = {user: asyncio.Lock() for user in users}
    report = Report()
    started = time.monotonic()
    connector = aiohttp.TCPConnector(limit=plan.max_connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        sender = CallbackSender(state, session, ingress_url.rstrip("/"), timing)

        async def one(seq: int, due: float, user: User) -> None:
            message = factory.build(seq, state.accounts[user.account], user, plan.mix.pick(kinds))
            async with locks[user] if plan.in_order else contextlib.nullcontext():
                outcome = await sender.deliver(message)
            report.record(outcome, outcome.finished_at - due)

        ticker = asyncio.create_task(_tick(report, started, on_tick)) if on_tick else None
        pending: set[asyncio.Task[None]] = set()
        try:
            for seq, offset in _schedule(plan):
                due = started + offset
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                report.tally.sent += 1
                task = asyncio.create_task(one(seq, due, users[seq % len(users)]))
                pending.add(task)
                task.add_done_callback(pending.discard)
            report.sending_s = time.monotonic() - started
            if pending:
                await asyncio.gather(*pending)
        finally:
            for task in pending:
                task.cancel()
            if ticker:
                ticker.cancel()
    report.elapsed_s = time.monotonic() - started
    return report


def _schedule(plan: TrafficPlan) -> Iterator[tuple[int, float]]:
    """Each message's number and when it is due, in seconds after the start."""
    for seq in itertools.count():
        offset = seq / plan.rate
        if plan.count is not None and seq >= plan.count:
            return
        if plan.duration_s is not None and offset >= plan.duration_s:
            return
        yield seq, offset


async def _tick(report: Report, started: float, on_tick: Callable[[Report], None]) -> None:
    while True:
        await asyncio.sleep(1.0)
        report.elapsed_s = time.monotonic() - started
        on_tick(report)
