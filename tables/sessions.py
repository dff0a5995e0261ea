"""`sessions`: each user's conversation so far, bounded, restored from its changelog.

Key: `<account>:<openid>`. Idle sessions are not returned (see agents.sessions); a row
is overwritten by the user's next conversation.
"""

from __future__ import annotations

import faust

from app.settings import Settings

__all__ = ("Turn", "Session", "sessions_table")


class Turn(faust.Record, serializer="json", include_metadata=False):
    role: str  # user | assistant
    text: str
    # The dedupe key of the message a user turn came from: a message processed again
    # after a crash finds its turn here and is not appended (nor answered) twice.
    ref: str = ""


class Session(faust.Record, serializer="json", include_metadata=False):
    turns: list[Turn]
    updated_at: float


def sessions_table(app: faust.App, settings: Settings) -> faust.Table:
    return app.Table(
        "sessions-v1",
        key_type=str,
        value_type=Session,
        partitions=settings.partitions,
        help="per-user conversation history",
    )
