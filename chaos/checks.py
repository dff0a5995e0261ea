"""Checks every scenario ends with, and those on what reached the topics."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Iterable, Sequence

from app.topics import CLEAN_EVENTS, DELIVERIES, RAW_EVENTS, REPLIES, reply_id
from chaos.harness import ChaosStack
from chaos.ledger import Ledger, Sent
from chaos.result import Check

__all__ = ("health", "exactly_once", "ledger_figures", "raw_growth", "one_reply_each", "nothing_from")

TRACED = 3  # lost or doubled messages a check's detail explains


async def health(h: ChaosStack) -> tuple[Check, ...]:
    """Every component still runs and the ingress says it is alive and ready."""
    down = h.down()
    alive, _ = await h.ingress_get("/healthz")
    ready, body = await h.ingress_get("/readyz")
    return (
        Check("every component still running", not down, f"exited: {', '.join(down) or 'none'}"),
        Check("ingress alive and ready", alive == ready == 200, f"/healthz {alive}, /readyz {ready} {body}"),
    )


def ledger_figures(ledger: Ledger) -> dict[str, Any]:
    """How the messages were answered, and a few replies that matched none."""
    kinds = Counter(ledger.kind_of(m) or "unanswered" for m in ledger.messages)
    paths = Counter(a.path for answers in ledger.answers.values() for a in answers)
    return {
        "answered_by": dict(kinds),
        "delivered_by": dict(paths),
        "stray_sample": [f"{g.openid} {g.path}: {g.text[:60]}" for g in ledger.stray[:5]],
    }


async def exactly_once(h: ChaosStack, ledger: Ledger) -> tuple[Check, ...]:
    """The counts' verdict as checks whose details say where a lost message stopped (which
    topics hold it, which delivery verdicts its reply got) and how a message was answered
    twice."""
    lost, twice = ledger.lost, ledger.answered_twice
    traced = "; ".join(await _traces(h, lost[:TRACED])) if lost else ""
    doubled = "; ".join(f"{m.msg_id} by {'+'.join(a.path for a in ledger.answers_to(m))}" for m in twice[:TRACED])
    return (
        Check("every accepted message answered", not lost, f"{len(lost)} lost: {traced}"),
        Check("no message answered twice", not twice, f"{len(twice)} twice: {doubled}"),
    )


async def _traces(h: ChaosStack, messages: Sequence[Sent]) -> list[str]:
    """Where each message stopped: its records on the raw, clean and replies topics, and
    the delivery verdicts its reply got."""
    raw, clean, replies, verdicts = [await h.topic_values(t) for t in (RAW_EVENTS, CLEAN_EVENTS, REPLIES, DELIVERIES)]
    traces = []
    for m in messages:
        key, rid = f"msg:{m.msg_id}", reply_id(m.account, f"msg:{m.msg_id}")
        held = (
            f"raw {sum(r.get('dedupe_key') == key for r in raw)}",
            f"clean {sum(r.get('dedupe_key') == key for r in clean)}",
            f"replies {sum(r.get('in_reply_to') == key for r in replies)}",
        )
        paths = "+".join(v["path"] for v in verdicts if v.get("reply_id") == rid) or "none"
        traces.append(f"{m.openid}/{m.msg_id}: {', '.join(held)}, delivery verdicts {paths}")
    return traces


def raw_growth(grew: int, accepted: int, unsure: int) -> Check:
    """The raw topic holds one record per accepted callback; an attempt WeChat gave up on
    (and retried) may or may not have been written, so up to `unsure` more."""
    return Check(
        "raw topic grew by the accepted callbacks only",
        accepted <= grew <= accepted + unsure,
        f"grew by {grew}, expected {accepted}" + (f" to {accepted + unsure}" if unsure else ""),
    )


def nothing_from(records: Iterable[dict[str, Any]], prefix: str, what: str) -> Check:
    """No record of a user whose openid starts with `prefix`."""
    found = [r for r in records if str(r.get("openid", "")).startswith(prefix)]
    detail = json.dumps(found[:2], ensure_ascii=False)[:300]
    return Check(f"nothing of the {what} reached the raw topic", not found, detail)


def one_reply_each(replies: Iterable[dict[str, Any]], keys: Sequence[str]) -> Check:
    """No message got a second reply on the replies topic (`keys`: their dedupe keys)."""
    counts = Counter(r["in_reply_to"] for r in replies)
    twice = [key for key in keys if counts[key] > 1]
    return Check("one reply per message on the replies topic, none for a replay", not twice, f"several for {twice[:5]}")
