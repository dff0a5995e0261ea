"""The delivery state of one reply, and how each record about it moves that state on.

Pure: the agent reads an entry from the outbox table, applies `on_reply` or `on_verdict`,
stores the result and does the returned step. A reply waits until the ingress says
whether it answered passively (`passive`) or not (`deferred`); only a deferred reply is
sent by the API, and only once: parts sent and the part being sent are in the entry.
"""

from __future__ import annotations

from enum import Enum
from typing import Optional

import faust

from app.topics import Reply

__all__ = ("OutboxEntry", "Step", "on_reply", "on_verdict", "OPEN", "PASSIVE", "DEFERRED")

OPEN = "open"
PASSIVE = "passive"
DEFERRED = "deferred"
API = "api"
MAILBOX = "mailbox"
DEAD_LETTER = "dead_letter"


class OutboxEntry(faust.Record, serializer="json", include_metadata=False):
    reply: Optional[Reply] = None
    verdict: str = ""  # "", passive, deferred: the first verdict counts
    state: str = OPEN  # open, passive, api, mailbox, dead_letter
    parts_sent: int = 0
    # The part being sent: still set after a crash, that part may have reached the user.
    attempting: int = -1
    typing: bool = False

    @property
    def empty(self) -> bool:
        return self.reply is None and not self.verdict and self.state == OPEN


class Step(Enum):
    WAIT = "wait"  # for the ingress's verdict
    DELIVER = "deliver"  # by the API, from part `parts_sent` on
    TYPING = "typing"  # deferred before the reply exists: show that it is coming
    DUPLICATE = "duplicate"  # a repeat of a reply already handled
    NOTHING = "nothing"


def on_reply(entry: OutboxEntry, reply: Reply) -> tuple[OutboxEntry, Step]:
    if entry.reply is not None and entry.state != OPEN:
        return entry, Step.DUPLICATE
    if entry.reply is None:  # the first text counts: a repeat after a crash may differ
        entry = entry.derive(reply=reply)
    if entry.state != OPEN:
        return entry, Step.NOTHING
    return entry, Step.DELIVER if entry.verdict == DEFERRED else Step.WAIT


def on_verdict(entry: OutboxEntry, path: str) -> tuple[OutboxEntry, Step]:
    """`path` of a delivery record: passive or deferred from the ingress (deferred also
    from the sender's own timeout); the sender's outcome records change nothing. A
    deferred record seen again while the reply is still open is the same record read
    again after a crash: delivery resumes where the entry says it stopped."""
    if path == PASSIVE and entry.state == OPEN and entry.parts_sent == 0 and entry.attempting < 0:
        return entry.derive(verdict=entry.verdict or PASSIVE, state=PASSIVE), Step.NOTHING
    if path != DEFERRED or entry.state != OPEN:
        return entry, Step.NOTHING
    if not entry.verdict:
        entry = entry.derive(verdict=DEFERRED)
    if entry.reply is not None:
        return entry, Step.DELIVER
    if not entry.typing:
        return entry.derive(typing=True), Step.TYPING
    return entry, Step.NOTHING
