"""Records an agent cannot process go to the dead-letter topic with the reason, so that
they never block a partition; operators read them there (`wxstream tail deadletter`)."""

from __future__ import annotations

import logging
import time

import faust

from agents.metrics import AgentMetrics
from app.topics import DeadLetter, Topics

__all__ = ("dead_letter", "send_to_dead_letters")

log = logging.getLogger("wxstream.agents.deadletters")


def dead_letter(event: faust.types.EventT, reason: str) -> DeadLetter:
    """The dead letter of `event`'s record: where it was, why, and its value as text."""
    message = event.message
    return DeadLetter(
        source_topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        reason=reason,
        payload=bytes(event.value or b"").decode("utf-8", "backslashreplace"),
        at=time.time(),
    )


async def send_to_dead_letters(topics: Topics, metrics: AgentMetrics, event: faust.types.EventT, reason: str) -> None:
    """Log, write (acknowledged by the broker) and count the dead letter of `event`. The
    reason's first word (`undecodable`, `schema`) is the metric's label."""
    message = event.message
    log.warning("dead-lettering %s[%d]@%d: %s", message.topic, message.partition, message.offset, reason)
    await (await topics.dead_letters.send(key=event.key, value=dead_letter(event, reason)))
    metrics.dead_letters.labels(reason.split(":")[0]).inc()
