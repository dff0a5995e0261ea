"""Conversation sessions: bounded history, idle timeout, reset, and the model prompt.

Pure functions over `tables.sessions.Session`; the conversation stores the result.
"""

from __future__ import annotations

import re

from app.keywords import normalise
from tables.sessions import Session, Turn

__all__ = (
    "RESET_COMMANDS",
    "is_reset",
    "active",
    "answered",
    "with_turns",
    "estimate_tokens",
    "render_prompt",
)

RESET_COMMANDS = frozenset({"/reset", "新对话", "重新开始"})


def is_reset(text: str) -> bool:
    return normalise(text) in RESET_COMMANDS


def active(session: Session | None, now: float, idle_s: float) -> tuple[Turn, ...]:
    """The turns of a session that has not been idle for `idle_s`; else none."""
    if session is None or now - session.updated_at > idle_s:
        return ()
    return tuple(session.turns)


def answered(session: Session | None, ref: str) -> str | None:
    """The answer already given to message `ref` if it is in the session (reprocessing)."""
    if session is None or not ref:
        return None
    turns = session.turns
    for i, turn in enumerate(turns[:-1]):
        if turn.role == "user" and turn.ref == ref and turns[i + 1].role == "assistant":
            return turns[i + 1].text
    return None


def estimate_tokens(text: str) -> int:
    """Rough token count without a tokenizer: a CJK character is about one token, other
    text about four characters per token. Only used to bound the history."""
    wide = sum(1 for ch in text if ord(ch) > 0x2E80)
    return wide + (len(text) - wide + 3) // 4


def with_turns(
    turns: tuple[Turn, ...], new: tuple[Turn, ...], now: float, max_turns: int, max_tokens: int
) -> Session:
    """The session after `new` turns, dropping the oldest exchanges beyond the bounds."""
    kept = list(turns + new)
    kept = kept[max(0, len(kept) - max(2 * max_turns, len(new))) :]
    while len(kept) > len(new) and sum(estimate_tokens(t.text) for t in kept) > max_tokens:
        kept = kept[2:] if len(kept) - 2 >= len(new) else kept[1:]
    return Session(turns=kept, updated_at=now)


_SPECIAL_TOKENS = re.compile(r"<\|(?:system|user|assistant|observation|endoftext)\|>|\[gMASK\]|<sop>")


def render_prompt(system_prompt: str, history: tuple[Turn, ...], text: str) -> str:
    """GLM-4's chat template: `[gMASK]<sop><|system|>\n...<|user|>\n...<|assistant|>\n`.

    The template's special tokens are removed from users' text, so that nobody can
    write a turn of their own into the prompt."""
    parts = ["[gMASK]<sop>"]
    if system_prompt:
        parts.append(f"<|system|>\n{system_prompt}")
    for turn in history:
        parts.append(f"<|{turn.role}|>\n{_plain(turn.text)}")
    parts.append(f"<|user|>\n{_plain(text)}<|assistant|>\n")
    return "".join(parts)


def _plain(text: str) -> str:
    """`text` without special tokens, also those that removing one would join up."""
    while True:
        stripped = _SPECIAL_TOKENS.sub("", text)
        if stripped == text:
            return text
        text = stripped
