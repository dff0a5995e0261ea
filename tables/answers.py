"""`answer-cache`: answers to repeated context-free questions, reused without the model."""

from __future__ import annotations

from datetime import timedelta

import faust

from app.settings import Settings

__all__ = ("answer_cache_table",)


def answer_cache_table(app: faust.App, settings: Settings) -> faust.types.tables.WindowWrapperT:
    """Answers to context-free questions, by `<account>:<normalised question>`; one window
    of `answer_cache_ttl_s`, then purged."""
    ttl = settings.answer_cache_ttl_s
    return app.Table(
        "answer-cache-v1",
        key_type=str,
        value_type=str,
        default=str,
        partitions=settings.partitions,
        help="answers to repeated context-free questions",
    ).tumbling(ttl, expires=timedelta(seconds=ttl))
