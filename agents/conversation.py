"""clean events -> replies: the conversation with each user.

The dedupe agent hands each event it publishes to the clean topic straight to
`Conversation.answer`, in the same worker and partition, instead of this reading the
clean topic back: a hop through the broker less, which took 10 to 20 ms off every
passive reply at light load. The clean topic is the data teams' record of what came in.

Per message, in this order: reset command; rate limits (per user per minute, per account
per second; one polite notice per window, the rest dropped and counted); keyword rules;
for a message without conversation context, the answer cache; else the model, with the
user's session as context. Replies waiting in the user's mailbox (the API refused them)
go first in the reply, which is the way WeChat leaves to reach the user again. For an
account without the API, a reply longer than a passive reply may be is cut: its head
goes, closed by `more_text`, and the rest waits in the mailbox for the next message. Every
reply's id is derived from the message it answers, and a message processed again after a
crash finds its answer in the session, so it gets the same id and text, no second model
call and no second turn.

Messages are handled as jobs, several users' at a time and each user's one after another
(agents/ordering.py); the raw record behind a message is acknowledged, so committed, once
its job is done and its reply is delivered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Mapping

import faust

from agents import sessions
from agents.delivery import Acks
from agents.metrics import AgentMetrics
from agents.ordering import KeyedTasks
from app.accounts import Account
from app.clients.triton import ModelClient, ModelError
from app.keywords import match_rules, normalise, trigger_of
from app.outbound.split import cut_to_fit
from app.settings import Settings
from app.topics import CleanEvent, Reply, Topics, reply_id
from app.wechat.replies import PASSIVE_TEXT_MAX_BYTES
from tables.outbox import REST_OF, MailItem, Mailbox
from tables.ratelimits import RateTables, count_message
from tables.sessions import Session, Sessions, Turn

log = logging.getLogger("wxstream.agents.conversation")

RATE_NOTICE = "You are sending messages faster than I can answer. Please wait a minute."
RESET_TEXT = "OK, let's start a new conversation."


def user_text(event: CleanEvent) -> str | None:
    """What the user said: a text message, or the recognised speech of a voice message."""
    if event.msg_type == "text":
        return event.fields.get("Content", "")
    if event.msg_type == "voice":
        return event.fields.get("Recognition") or None
    return None


@dataclass(frozen=True)
class Tables:
    rates: RateTables
    sessions: Sessions  # windowed: idle sessions are purged
    answers: faust.types.tables.WindowWrapperT | None  # windowed answer cache, None when disabled
    mailboxes: faust.Table  # replies the API could not deliver, for the user's next reply


class Conversation:
    """Answers users' messages as jobs: up to `concurrency` at a time, so that model calls
    overlap, and one user's always one after another."""

    def __init__(
        self, handle: Callable[[str, CleanEvent], Awaitable[None]], concurrency: int, model: ModelClient, drain_s: float
    ) -> None:
        self._handle = handle
        self._jobs = KeyedTasks(concurrency)
        self.model = model
        self._drain_s = drain_s

    @property
    def running(self) -> int:
        return self._jobs.running

    async def answer(self, user: str, event: CleanEvent) -> asyncio.Task[None]:
        """Start answering `event` (`user`: its key) once the user's earlier messages are
        answered, and return the job's task. Call it from the agent whose event `event`
        is: the job reads and writes the tables in that event's partition and windows.
        Waits while the backlog is full (BACKLOG_PER_SLOT unfinished jobs per slot):
        backpressure on that agent."""
        return await self._jobs.submit(user, self._handle(user, event))

    async def close(self) -> None:
        """Let the jobs under way finish (at most `drain_s`), then close the model client."""
        await self._jobs.drain(timeout=self._drain_s)
        await self.model.close()


@dataclass(frozen=True)
class Responder:
    """The steps from one user message to its reply record, run as a conversation job:
    reset, limits, keywords, answer cache, model; owed replies first; the cut for accounts
    without the API."""

    acks: Acks
    topics: Topics
    tables: Tables
    accounts: Mapping[str, Account]
    settings: Settings
    model: ModelClient
    metrics: AgentMetrics

    def conversation(self) -> Conversation:
        """The jobs that answer users' messages with this responder."""
        settings = self.settings
        conversation = Conversation(self.handle, settings.conversation_concurrency, self.model, settings.model_timeout_s)
        self.metrics.conversations.set_function(lambda: conversation.running)
        return conversation

    async def handle(self, user: str, event: CleanEvent) -> None:
        """One message, from the limits to the reply sent (not yet acknowledged); `user`
        is its key, `user_key(event.account, event.openid)`."""
        account = self.accounts.get(event.account)
        if account is None:
            self.metrics.drops.labels(event.account, "unknown_account").inc()
            return
        result = await self._respond(account, user, event)
        replying = reply_id(event.account, event.dedupe_key)
        rest_id = REST_OF.format(replying)
        # Owed replies go first. This reply's own rest is in the mailbox only when this
        # message was answered before a crash; it stays there for the next message.
        box = self.tables.mailboxes.get(user) or Mailbox(items=[])
        owed = Mailbox(items=[item for item in box.items if item.reply_id != rest_id])
        if owed.items:
            result = (owed.text, "mailbox") if result is None else (f"{owed.text}\n\n{result[0]}", result[1])
        if result is None:
            return
        text, source = result
        rest = ""
        if not account.certified:  # passive replies are the only way: the rest waits
            text, rest = cut_to_fit(text, PASSIVE_TEXT_MAX_BYTES, self.settings.more_text)
        self.metrics.replies.labels(account.name, source).inc()
        delivery = await self.topics.replies.send(
            key=user,
            value=Reply(
                reply_id=replying,
                account=event.account,
                openid=event.openid,
                in_reply_to=event.dedupe_key,
                text=text,
                model=self.model.model_for(account.name, user) if source == "model" else source,
                created_at=time.time(),
                received_at=event.ingest_time,
            ),
        )
        if owed.items or rest:
            await delivery  # the owed replies leave the mailbox, and the rest goes in, once this is out
            self._settle_mailbox(user, owed, MailItem(reply_id=rest_id, text=rest) if rest else None)
        else:
            # Processed again after a crash, the event gives the same reply (the session
            # knows it, the reply id is derived from the message).
            self.acks.until(faust.current_event(), delivery)

    def _settle_mailbox(self, user: str, sent: Mailbox, rest: MailItem | None) -> None:
        """Take the replies just sent out of the user's mailbox, and put the rest of this
        reply in."""
        now_in = self.tables.mailboxes.get(user) or Mailbox(items=[])  # read again: it may have grown
        left = now_in.without(sent)
        if rest is not None:
            left = left.adding(rest)
        if left.items:
            self.tables.mailboxes[user] = left
        elif now_in.items:
            del self.tables.mailboxes[user]
        self.metrics.outbound.mailbox_depth.inc(len(left.items) - len(now_in.items))

    async def _respond(self, account: Account, user: str, event: CleanEvent) -> tuple[str, str] | None:
        """(reply text, source) for the message, or None when it gets no reply of its own."""
        text = user_text(event)
        if text is None:  # events: only keyword rules answer them
            trigger = trigger_of(event.msg_type, event.fields)
            keyword = match_rules(account.keywords, trigger) if trigger else None
            return (keyword, "keyword") if keyword is not None else None
        session = self.tables.sessions.latest(user, time.time())
        already = sessions.answered(session, event.dedupe_key)
        if already is not None:  # processed before a crash: same answer, no second effect
            return already, "replay"
        verdict = self._over_limit(account, user, event.dedupe_key)
        if verdict == "drop":
            self.metrics.drops.labels(account.name, "rate_limited").inc()
            return None
        if verdict == "notice":
            self.metrics.drops.labels(account.name, "rate_limited").inc()
            return RATE_NOTICE, "notice"
        return await self._answer(account, user, event, text, session)

    def _over_limit(self, account: Account, user: str, message: str) -> str | None:
        """None when message `message` (a dedupe key) may proceed, else `notice` (tell the
        user, once per window) or `drop`. A user over their own limit does not use up the
        account's. The same message processed again gets the same verdict."""
        rates = self.tables.rates
        place, counted = count_message(rates.user_count[user].current(), message, account.user_per_minute + 1)
        if counted is not None:
            rates.user_count[user] = counted
        if place <= account.user_per_minute:
            partition = faust.current_event().message.partition
            account_count = rates.account_count.add((partition, account.name))
            if account_count <= -(-account.account_per_second // self.settings.partitions):
                return None
        noticed = rates.user_notified[user].current()
        if noticed and noticed != message:
            return "drop"
        rates.user_notified[user] = message
        return "notice"

    async def _answer(
        self, account: Account, user: str, event: CleanEvent, text: str, session: Session | None
    ) -> tuple[str, str]:
        """(reply text, source) for one user message that passed the limits; `session` is
        the user's, as read for this message."""
        tables, settings = self.tables, self.settings
        if sessions.is_reset(text):
            tables.sessions.forget(user, time.time())
            return RESET_TEXT, "reset"
        keyword = match_rules(account.keywords, normalise(text))
        if keyword is not None:
            return keyword, "keyword"
        now = time.time()
        history = sessions.active(session, now, settings.session_idle_s)
        cache_key = f"{account.name}:{normalise(text)}"
        if not history and tables.answers is not None:
            cached = tables.answers[cache_key].current()
            if cached:
                return cached, "cache"
        prompt = sessions.render_prompt(account.system_prompt, history, text)
        try:
            reply = await self.model.generate(prompt, settings.model_max_tokens, account=account.name, user=user)
        except ModelError as exc:  # also ModelUnavailable (breaker open) and ModelOverloaded (shed)
            log.warning("model failed for %s: %s", event.dedupe_key, exc)
            self.metrics.fallbacks.labels(account.name, exc.model or self.model.model_name, exc.kind).inc()
            return settings.model_fallback_text, "fallback"
        session = sessions.with_turns(
            history,
            (Turn(role="user", text=text, ref=event.dedupe_key), Turn(role="assistant", text=reply)),
            time.time(),
            settings.session_max_turns,
            settings.session_max_tokens,
        )
        tables.sessions.store(user, session)
        if not history and tables.answers is not None:
            tables.answers[cache_key] = reply
        return reply, "model"

