"""replies + the delivery log -> messages to users by WeChat's customer-service API.

A reply is sent by the API only once the ingress has said it did not answer the callback
with it (a `deferred` record; `passive` means it did). Both records are keyed by user, so
they arrive in the user's partition; neither this agent nor the partition waits for the
other: the reply or the verdict that comes first is kept in the outbox table, and the one
that completes the pair triggers the send. A reply for which no verdict comes (the ingress
died, or spooled the message while the broker was away) is deferred by a timer after
`outbound_verdict_timeout_s`.

Each part of a long reply is marked as being sent (and the mark acknowledged by the
broker) before the API call, and as sent after it. A worker killed in between leaves the
mark: the restarted worker does not send that part again, which could show it twice, but
dead-letters the rest with the reason. WeChat's "not now" answers put the reply in the
user's mailbox, which the conversation empties into the reply to their next message.

The records are worked on as jobs (agents/ordering.py), `outbound_concurrency` at a
time and each user's one after another, so that one user's slow API call does not hold
up everyone else's replies; a record is acknowledged once its job is done.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Mapping

import faust

from agents.deadletters import dead_letter, send_to_dead_letters
from agents.delivery import Acks
from agents.metrics import AgentMetrics
from agents.ordering import KeyedTasks
from app.accounts import Account
from app.outbound import outbox as states
from app.outbound.metrics import OutboundMetrics
from app.outbound.outbox import OutboxEntry, Step, on_reply, on_verdict
from app.outbound.policy import Action
from app.outbound.sender import Outcome, Sender
from app.outbound.split import split_text
from app.settings import Settings
from app.topics import DELIVERIES, REPLIES, Delivery, Reply, Topics, user_key
from tables.outbox import Mailbox, MailItem, Outbox, latest

__all__ = ("Outbound", "install")

log = logging.getLogger("wxstream.agents.outbound")


@dataclass(frozen=True)
class Waiting:
    """A reply waiting for the ingress's verdict, until `due` (unix s)."""

    due: float
    account: str
    openid: str


@dataclass(eq=False)
class Outbound:
    """What the outbound agent and its timer do with the replies and verdicts of the
    partitions this worker holds; the state lives in the outbox table."""

    topics: Topics
    outbox: Outbox
    accounts: Mapping[str, Account]
    settings: Settings
    sender: Sender
    metrics: AgentMetrics
    jobs: KeyedTasks = field(init=False)
    # reply id -> when to stop waiting for a verdict; and the assignment that was found for
    _waiting: dict[str, Waiting] = field(init=False, default_factory=dict)
    _scanned: set[faust.types.TP] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.jobs = KeyedTasks(self.settings.outbound_concurrency)
        for name in self.accounts:  # at 0 from the start, so that alerts see the first one
            self._counts.messages.labels(name, "api", "dead_letter")

    @property
    def _counts(self) -> OutboundMetrics:
        return self.metrics.outbound

    async def move_on(self, event: faust.types.EventT, about: Reply | Delivery) -> None:
        """Apply a reply or a verdict to its outbox entry, and take the step that follows."""
        outbox, counts = self.outbox, self._counts
        before = latest(outbox, about.reply_id)
        entry, step = on_reply(before, about) if isinstance(about, Reply) else on_verdict(before, about.path)
        if entry is not before:
            outbox.entries[about.reply_id] = entry
        if entry.state == states.PASSIVE and before.state != states.PASSIVE:
            counts.messages.labels(about.account, "passive", "sent").inc()
            if entry.reply is not None and entry.reply.received_at and isinstance(about, Delivery):
                counts.reply_latency.labels("passive").observe(max(0.0, about.delivered_at - entry.reply.received_at))
        if step is Step.WAIT:
            self._wait_for_verdict(entry.reply)
            return
        self._waiting.pop(about.reply_id, None)
        if step is Step.DELIVER:
            await self._deliver(event, entry)
        elif step is Step.TYPING and self.settings.outbound_typing:
            if (account := self.accounts.get(about.account)) is not None:
                await self.sender.typing(account, about.openid)
        elif step is Step.DUPLICATE:
            counts.messages.labels(about.account, "api", "skipped_duplicate").inc()

    async def defer_overdue(self, assignment: set[faust.types.TP]) -> None:
        """Defer replies whose verdict is overdue; after a rebalance (`assignment` changed),
        first find the replies of the partitions now assigned that still wait for one."""
        if assignment != self._scanned:
            self._rebuild_waiting()
            self._scanned = assignment
        now = time.time()
        timeout_s = self.settings.outbound_verdict_timeout_s
        for reply_id, due in [(rid, w) for rid, w in self._waiting.items() if w.due <= now]:
            delivery = Delivery(
                reply_id=reply_id,
                account=due.account,
                openid=due.openid,
                path=states.DEFERRED,
                delivered_at=now,
                reason=f"no verdict from the ingress within {timeout_s:g}s",
            )
            try:
                await (await self.topics.deliveries.send(key=user_key(due.account, due.openid), value=delivery))
            except Exception as exc:  # still waiting: tried again on the next tick
                log.warning("could not defer reply %s: %s", reply_id, exc)
                continue
            self._waiting.pop(reply_id, None)

    def _wait_for_verdict(self, reply: Reply) -> None:
        since = reply.received_at or reply.created_at
        due = since + self.settings.outbound_verdict_timeout_s
        self._waiting[reply.reply_id] = Waiting(due, reply.account, reply.openid)

    def _rebuild_waiting(self) -> None:
        """After a rebalance: the replies still waiting for a verdict, and the mailboxes'
        depth, from the tables of the partitions now assigned."""
        outbox = self.outbox
        self._waiting.clear()
        for reply_id in {reply_id for reply_id, _window in outbox.entries_table.keys()}:
            entry = latest(outbox, reply_id)  # older windows may hold older states
            if entry.reply is not None and entry.state == states.OPEN and not entry.verdict:
                self._wait_for_verdict(entry.reply)
        self._counts.mailbox_depth.set(sum(len(box.items) for box in outbox.mailboxes.values()))

    async def _deliver(self, event: faust.types.EventT, entry: OutboxEntry) -> None:
        outbox, counts = self.outbox, self._counts
        reply = entry.reply
        account = self.accounts.get(reply.account)
        parts = split_text(reply.text, self.settings.outbound_max_part_bytes)
        if account is None:
            return await self._give_up(event, entry, reply.text, f"unknown account {reply.account!r}")
        if entry.attempting >= 0:
            unsent = "".join(parts[entry.attempting :])
            why = f"interrupted while sending part {entry.attempting + 1} of {len(parts)}, which may have arrived"
            return await self._give_up(event, entry, unsent, f"{why}; not sent again")
        for index in range(entry.parts_sent, len(parts)):
            entry = entry.derive(attempting=index)
            outbox.entries[reply.reply_id] = entry
            await outbox.persisted()
            outcome: Outcome = await self.sender.send_text(account, reply.openid, parts[index])
            if outcome.retries:
                counts.messages.labels(reply.account, "api", "retried").inc(outcome.retries)
            if outcome.action is Action.MAILBOX:
                return await self._to_mailbox(entry, "".join(parts[index:]), outcome.reason)
            if outcome.action is Action.DEAD_LETTER:
                return await self._give_up(event, entry, "".join(parts[index:]), outcome.reason)
            entry = entry.derive(parts_sent=index + 1, attempting=-1)
            outbox.entries[reply.reply_id] = entry
        outbox.entries[reply.reply_id] = entry.derive(state=states.API)
        await outbox.persisted()
        await self._record(reply, states.API)
        counts.messages.labels(reply.account, "api", "sent").inc()
        if reply.received_at:
            counts.reply_latency.labels("api").observe(max(0.0, time.time() - reply.received_at))

    async def _to_mailbox(self, entry: OutboxEntry, unsent: str, reason: str) -> None:
        outbox = self.outbox
        reply = entry.reply
        user = user_key(reply.account, reply.openid)
        box = outbox.mailboxes.get(user) or Mailbox(items=[])
        added = box.adding(MailItem(reply_id=reply.reply_id, text=unsent))
        if added is not box:
            outbox.mailboxes[user] = added
            self._counts.mailbox_depth.inc()
        outbox.entries[reply.reply_id] = entry.derive(attempting=-1, state=states.MAILBOX)
        await outbox.persisted()
        await self._record(reply, states.MAILBOX, reason)
        self._counts.messages.labels(reply.account, "mailbox", "mailboxed").inc()
        log.info("reply %s to %s is in the mailbox: %s", reply.reply_id, user, reason)

    async def _give_up(self, event: faust.types.EventT, entry: OutboxEntry, unsent: str, reason: str) -> None:
        """Dead-letter the reply's unsent text. The letter goes out before the entry says
        so: a crash in between gives a second letter, not none."""
        reply = entry.reply
        letter = dead_letter(event, f"delivery: {reason}")
        payload = json.dumps({"reply": reply.asdict(), "unsent": unsent}, ensure_ascii=False)
        key = user_key(reply.account, reply.openid)
        await (await self.topics.dead_letters.send(key=key, value=letter.derive(payload=payload)))
        await self._record(reply, states.DEAD_LETTER, reason)
        self.outbox.entries[reply.reply_id] = entry.derive(attempting=-1, state=states.DEAD_LETTER)
        await self.outbox.persisted()
        self.metrics.dead_letters.labels("delivery").inc()
        self._counts.messages.labels(reply.account, "api", "dead_letter").inc()
        log.error("reply %s to %s:%s dead-lettered: %s", reply.reply_id, reply.account, reply.openid, reason)

    async def _record(self, reply: Reply, path: str, reason: str = "") -> None:
        delivery = Delivery(
            reply_id=reply.reply_id,
            account=reply.account,
            openid=reply.openid,
            path=path,
            delivered_at=time.time(),
            reason=reason,
        )
        await (await self.topics.deliveries.send(key=user_key(reply.account, reply.openid), value=delivery))


def install(app: faust.App, work: Outbound, acks: Acks) -> faust.types.AgentT:
    topics, settings = work.topics, work.settings
    channel = app.topic(
        REPLIES.name,
        DELIVERIES.name,
        key_type=str,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
    )

    async def handle(event: faust.types.EventT) -> None:
        """Decode the record, then move its reply on as a job of the reply's user."""
        try:
            about: Reply | Delivery = (Reply if event.message.topic == REPLIES.name else Delivery).loads(event.value)
        except (ValueError, TypeError, KeyError) as exc:
            return await send_to_dead_letters(topics, work.metrics, event, f"undecodable: {type(exc).__name__}: {exc}")
        acks.until(event, await work.jobs.submit(user_key(about.account, about.openid), work.move_on(event, about)))

    @app.agent(channel, name="wxstream.outbound")
    async def outbound(stream: faust.StreamT[bytes]) -> None:
        try:
            # Any other failure (the broker, a bug) stops the worker with the event
            # unacknowledged, rather than losing the reply or the verdict it carries.
            await acks.handle_each(stream, handle)
        finally:
            await work.jobs.drain(timeout=settings.outbound_request_timeout_s)
            await work.sender.close()

    @app.timer(1.0, name="wxstream.outbound.verdict_timeout")
    async def verdict_timeout() -> None:
        if app.tables.recovery.completed.is_set():
            await work.defer_overdue(set(app.consumer.assignment()))

    return outbound
