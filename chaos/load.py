"""Steady simulated load with a fault in the middle of it, and the wait for the last answers.

The load is the simulator's open-loop traffic (app/simulator/traffic.py): messages due on
a fixed timeline whatever happens to the stack, each user's in order, each delivered
with WeChat's 5 s deadline and 3 attempts.
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable, Iterable, Sequence, TypeVar

import aiohttp

from app.simulator.callbacks import CallbackSender, Outcome
from app.simulator.messages import MessageFactory
from app.simulator.population import User
from app.simulator.report import Report, Tally
from app.simulator.state import SimState
from app.simulator.traffic import TrafficPlan, drive
from chaos.harness import ChaosStack
from chaos.ledger import Got, Ledger, Sent, reconcile
from chaos.options import ChaosOptions
from chaos.report import progress_line

__all__ = ("Progress", "under_fault", "answered", "follow_up", "sent_of", "received_of")

T = TypeVar("T")
POLL_S = 0.5
# A reply with no verdict from the ingress is sent by the API after the verdict timeout;
# nothing arriving for this much longer means the rest waits for something else.
STALL_MARGIN_S = 10.0
FOLLOW_UP_SEED = 7919  # follow-up messages: texts of their own, numbered from FOLLOW_UP_SEQ
FOLLOW_UP_SEQ = 1_000_000


class Progress:
    """Writes a scenario's progress: a line per `every_s` at most, and notes of its events."""

    def __init__(self, scenario: str, write: Callable[[str], None], every_s: float = 5.0) -> None:
        self.scenario = scenario
        self.write = write
        self.every_s = every_s
        self.started = time.monotonic()
        self._last = -every_s

    def tick(self, phase: str, tally: Tally | None, received: int) -> None:
        elapsed = time.monotonic() - self.started
        if elapsed - self._last >= self.every_s:
            self._last = elapsed
            self.write(progress_line(self.scenario, phase, elapsed, tally, received))

    def note(self, text: str) -> None:
        self.write(f"  [{self.scenario}] {time.monotonic() - self.started:5.0f}s {text}")


def sent_of(outcomes: Iterable[Outcome]) -> list[Sent]:
    """The users' messages delivered and whether WeChat counted each as taken."""
    return [
        Sent(m.user.account, m.user.openid, m.msg_id, m.text, o.result != "failed", o.started_at)
        for o in outcomes
        if (m := o.message).msg_id is not None
    ]


def received_of(state: SimState, ignore: tuple[str, ...] = ()) -> list[Got]:
    """What users received, but for users whose openid starts with one of `ignore`."""
    return [
        Got(item.account, item.openid, item.path, item.text, item.in_reply_to)
        for item in state.recorder.received()
        if not (ignore and item.openid.startswith(ignore))
    ]


async def under_fault(
    h: ChaosStack, plan: TrafficPlan, fault: Callable[[], Awaitable[T]], progress: Progress
) -> tuple[Report, T]:
    """Run the plan's load and, beside it, `fault`; both must finish."""

    def tick(report: Report) -> None:
        progress.tick("load", report.tally, len(h.state.recorder))

    load = asyncio.create_task(drive(h.state, h.child.ingress_url, plan, on_tick=tick))
    try:
        injected = await fault()
        report = await load
    finally:
        if not load.done():
            load.cancel()
    return report, injected


async def answered(
    h: ChaosStack, outcomes: Sequence[Outcome], options: ChaosOptions, progress: Progress, ignore: tuple[str, ...] = ()
) -> Ledger:
    """The ledger of these deliveries once their answers have arrived.

    Replies WeChat's API refused (too many since the user's last message, 45047) wait in
    the user's mailbox for the user's next message, as WeChat leaves no other way to reach
    them: users with messages still unanswered when the answers stop coming therefore
    write once more, and the answers are awaited again."""
    generic = (h.settings.model_fallback_text,)
    stall_s = h.settings.outbound_verdict_timeout_s + STALL_MARGIN_S
    sent = sent_of(outcomes)
    waits = (options.settle_s, options.quiet_s, stall_s)
    ledger = await _settle(h, sent, generic, *waits, progress, ignore)
    owed = list(dict.fromkeys(User(*m.user) for m in ledger.lost))
    if not owed:
        return ledger
    progress.note(f"{len(ledger.lost)} messages unanswered: their {len(owed)} users write once more (mailboxes)")
    more = await follow_up(h, owed)
    return await _settle(h, sent + sent_of(more), generic, *waits, progress, ignore)


async def follow_up(h: ChaosStack, users: Sequence[User]) -> list[Outcome]:
    """One more message from each of `users`, delivered as WeChat does."""
    factory = MessageFactory(seed=FOLLOW_UP_SEED)
    async with aiohttp.ClientSession() as session:
        sender = CallbackSender(h.state, session, h.child.ingress_url)
        accounts = h.state.accounts
        messages = [factory.build(FOLLOW_UP_SEQ + i, accounts[u.account], u, "text") for i, u in enumerate(users)]
        return list(await asyncio.gather(*(sender.deliver(message) for message in messages)))


async def _settle(
    h: ChaosStack,
    sent: Sequence[Sent],
    generic: tuple[str, ...],
    timeout_s: float,
    quiet_s: float,
    stall_s: float,
    progress: Progress,
    ignore: tuple[str, ...],
) -> Ledger:
    """Wait until every message WeChat counted as taken is answered and nothing more has
    arrived for `quiet_s` (a second answer would), until nothing has arrived for
    `stall_s` with messages still unanswered, or `timeout_s`; the ledger then."""
    deadline = time.monotonic() + timeout_s
    seen, changed = -1, time.monotonic()
    while True:
        received = received_of(h.state, ignore)
        if len(received) != seen:
            seen, changed = len(received), time.monotonic()
        ledger = reconcile(sent, received, generic)
        now = time.monotonic()
        if now - changed >= (quiet_s if ledger.settled else stall_s) or now >= deadline:
            return ledger
        progress.tick(f"settling, {len(ledger.lost)} unanswered", None, len(received))
        await asyncio.sleep(POLL_S)
