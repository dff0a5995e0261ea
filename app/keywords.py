"""Per-account keyword rules: fixed answers that need no model (menus, FAQs, welcome).

Rules are tried in order; the first match wins. `exact` compares the normalised text,
`regex` searches it. Events match on `event:<name>` (e.g. `event:subscribe`) or
`click:<EventKey>` for menu clicks.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Mapping

__all__ = ("KeywordRule", "normalise", "match_rules", "trigger_of", "expects_answer")


@dataclass(frozen=True, slots=True)
class KeywordRule:
    pattern: str
    reply: str
    kind: str = "exact"  # exact | regex

    def __post_init__(self) -> None:
        if not isinstance(self.pattern, str) or not isinstance(self.reply, str):
            raise ValueError("keyword rule pattern and reply must be strings")
        if self.kind not in ("exact", "regex"):
            raise ValueError(f"keyword rule kind must be exact or regex, got {self.kind!r}")
        if self.kind == "regex":
            re.compile(self.pattern)  # fail at load time, not on the first message

    def matches(self, text: str) -> bool:
        if self.kind == "exact":
            return normalise(self.pattern) == text
        return re.search(self.pattern, text) is not None


def normalise(text: str) -> str:
    """Case-, width- and whitespace-insensitive form of a user's text (NFKC, casefold)."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def trigger_of(msg_type: str, fields: Mapping[str, str]) -> str | None:
    """What a rule is matched against: the normalised text of a text message, or
    `event:<name>` / `click:<key>` for events; None for anything else."""
    if msg_type == "text":
        return normalise(fields.get("Content", ""))
    if msg_type == "event":
        event = fields.get("Event", "").lower()
        if event == "click":
            return normalise(f"click:{fields.get('EventKey', '')}")  # as rule patterns are
        return f"event:{event}"
    return None


def match_rules(rules: Iterable[KeywordRule], trigger: str) -> str | None:
    for rule in rules:
        if rule.matches(trigger):
            return rule.reply
    return None


def expects_answer(msg_type: str, fields: Mapping[str, str], rules: Iterable[KeywordRule]) -> bool:
    """Whether the pipeline will answer this callback: what a user said (a text message or
    recognised speech) always; an event or any other message only when a rule matches.
    The ingress holds a callback for its passive reply only when one will come."""
    if msg_type == "text" or (msg_type == "voice" and fields.get("Recognition")):
        return True
    trigger = trigger_of(msg_type, fields)
    return trigger is not None and match_rules(rules, trigger) is not None
