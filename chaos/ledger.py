"""What became of each message of a chaos run: answered once, answered twice, or lost.

Pure: it reads what WeChat's users sent (and whether WeChat counted each message as taken)
and what the simulator recorded that they received, by either path, and matches the two.
A received message answers

- the message it names: a passive reply carries the MsgId of the callback it answered;
- else the user's message with the same text: the echo model answers with the user's
  own text, which the simulator makes unique per message;
- else, if its text answers any message (the model's fallback text), the user's earliest
  message still without an answer, in the order the user wrote them; when every one of
  them is answered already, it is a second answer to the last one answered that way.

A received message that bundles several answers (the mailbox: replies WeChat's API
refused go first in the answer to the user's next message, separated by a blank line)
counts as one answer per part, when every part matches.

Whatever matches nothing is `stray`: a reply nobody asked for, or to the wrong user.
A message WeChat counted as taken (a 200 answer: `success` or a passive reply) and never
answered is `lost`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Iterable, Literal, Mapping

__all__ = ("Sent", "Got", "Answer", "Counts", "Ledger", "reconcile")

# echo: the user's own text back (the echo model); generic: a text that answers any
# message (the fallback); other: anything else that names the message it answers.
Kind = Literal["echo", "generic", "other"]
UserKey = tuple[str, str]  # account, openid
BUNDLE_SEPARATOR = "\n\n"  # between the replies of a mailbox and the answer they precede


@dataclass(frozen=True, slots=True)
class Sent:
    """One message a user sent, and whether WeChat counted it as taken."""

    account: str
    openid: str
    msg_id: int
    text: str
    accepted: bool
    started_at: float = 0.0  # time.monotonic() of its first delivery attempt

    @property
    def user(self) -> UserKey:
        return self.account, self.openid


@dataclass(frozen=True, slots=True)
class Got:
    """One message a user received, as the simulator recorded it."""

    account: str
    openid: str
    path: str  # passive | api
    text: str
    in_reply_to: int | None = None  # MsgId of the callback a passive reply answered

    @property
    def user(self) -> UserKey:
        return self.account, self.openid


@dataclass(frozen=True, slots=True)
class Answer:
    path: str
    kind: Kind


@dataclass(frozen=True)
class Counts:
    sent: int
    accepted: int
    answered_once: int
    answered_twice: int  # twice or more
    lost: int
    stray: int

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.answered_twice == 0 and self.stray == 0


@dataclass(frozen=True)
class Ledger:
    messages: tuple[Sent, ...]  # in the order they were sent
    answers: Mapping[int, tuple[Answer, ...]]  # by MsgId, in arrival order
    stray: tuple[Got, ...]

    def answers_to(self, message: Sent) -> tuple[Answer, ...]:
        return self.answers.get(message.msg_id, ())

    def kind_of(self, message: Sent) -> Kind | None:
        """How the message was first answered; None when it was not."""
        answers = self.answers_to(message)
        return answers[0].kind if answers else None

    @property
    def lost(self) -> list[Sent]:
        return [m for m in self.messages if m.accepted and not self.answers_to(m)]

    @property
    def answered_twice(self) -> list[Sent]:
        return [m for m in self.messages if len(self.answers_to(m)) > 1]

    @property
    def settled(self) -> bool:
        """Every message WeChat counted as taken has its answer."""
        return not self.lost

    def of_user(self, account: str, openid: str) -> list[Sent]:
        return [m for m in self.messages if m.user == (account, openid)]

    @property
    def counts(self) -> Counts:
        answered = [len(self.answers_to(m)) for m in self.messages]
        return Counts(
            sent=len(self.messages),
            accepted=sum(m.accepted for m in self.messages),
            answered_once=answered.count(1),
            answered_twice=sum(n > 1 for n in answered),
            lost=len(self.lost),
            stray=len(self.stray),
        )


def reconcile(sent: Iterable[Sent], received: Iterable[Got], generic: Iterable[str] = ()) -> Ledger:
    """Match what users received to what they sent; `generic` lists the texts that may
    answer any message (the fallback text)."""
    messages = tuple(sent)
    by_id: dict[int, Sent] = {}
    by_text: dict[tuple[UserKey, str], list[Sent]] = defaultdict(list)
    by_user: dict[UserKey, list[Sent]] = defaultdict(list)
    for message in messages:
        if message.msg_id in by_id:
            raise ValueError(f"MsgId {message.msg_id} was sent twice; a ledger needs one entry per message")
        by_id[message.msg_id] = message
        by_text[message.user, message.text].append(message)
        by_user[message.user].append(message)
    generic_texts = frozenset(generic)
    answers: dict[int, list[Answer]] = defaultdict(list)
    stray: list[Got] = []
    unplaced: list[Got] = []

    for got in (piece for item in received for piece in _pieces(item, by_text, generic_texts)):
        named = by_id.get(got.in_reply_to) if got.in_reply_to is not None else None
        if named is not None and named.user == got.user:
            answers[named.msg_id].append(Answer(got.path, _kind(got.text, named.text, generic_texts)))
        elif by_text.get((got.user, got.text)):
            same_text = by_text[got.user, got.text]
            target = next((m for m in same_text if not answers[m.msg_id]), same_text[0])
            answers[target.msg_id].append(Answer(got.path, "echo"))
        elif got.text in generic_texts and got.user in by_user:
            unplaced.append(got)  # placed once every exact match is known
        else:
            stray.append(got)

    for got in unplaced:
        own = by_user[got.user]
        target = next((m for m in own if not answers[m.msg_id]), None)
        if target is None:
            target = next((m for m in reversed(own) if any(a.kind == "generic" for a in answers[m.msg_id])), None)
        if target is None:
            stray.append(got)
        else:
            answers[target.msg_id].append(Answer(got.path, "generic"))

    return Ledger(messages, {msg_id: tuple(found) for msg_id, found in answers.items() if found}, tuple(stray))


def _pieces(got: Got, by_text: Mapping[tuple[UserKey, str], object], generic: frozenset[str]) -> list[Got]:
    """A bundle's parts, owed replies first and the answer to the message it names last."""
    parts = got.text.split(BUNDLE_SEPARATOR)
    if len(parts) == 1 or not all((got.user, part) in by_text or part in generic for part in parts):
        return [got]
    return [replace(got, text=part, in_reply_to=None) for part in parts[:-1]] + [replace(got, text=parts[-1])]


def _kind(text: str, said: str, generic: frozenset[str]) -> Kind:
    if text == said:
        return "echo"
    return "generic" if text in generic else "other"
