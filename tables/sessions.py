"""`sessions`: each user's conversation so far, bounded, restored from its changelog.

A tumbling-window table on the wall clock whose window is the idle timeout: a session
is stored in the window of its `updated_at` and read from the window of now or the one
before, which between them hold every session that is not idle yet. Windows older than
twice the idle timeout are purged by Faust's table cleanup (and the changelog's retention),
so a user who does not come back leaves nothing behind. Key: `<account>:<openid>`.
"""

from __future__ import annotations

from datetime import timedelta

import faust
from faust.types.windows import WindowRange

from app.settings import Settings

__all__ = ("Turn", "Session", "Sessions", "sessions_table", "SESSIONS_TABLE")

# v2: windowed keys `(user, (start, end))`; v1 was keyed by user alone.
SESSIONS_TABLE = "sessions-v2"


class Turn(faust.Record, serializer="json", include_metadata=False):
    role: str  # user | assistant
    text: str
    # The dedupe key of the message a user turn came from: a message processed again
    # after a crash finds its turn here and is not appended (nor answered) twice.
    ref: str = ""


class Session(faust.Record, serializer="json", include_metadata=False):
    turns: list[Turn]
    updated_at: float


class Sessions:
    """The sessions table, read and written by explicit wall-clock windows, so that the
    conversation and the admin view (outside any stream) see the same rows."""

    def __init__(self, windows: faust.types.tables.WindowWrapperT, idle_s: float) -> None:
        self.windows = windows
        self.idle_s = idle_s

    def latest(self, user: str, now: float) -> Session | None:
        """The user's session in the window of `now`, else in the window before."""
        for window in self._readable(now):
            session = self.windows.table.get((user, window))
            if session is not None:
                return session
        return None

    def store(self, user: str, session: Session) -> None:
        """Keep `session` in the window of its `updated_at`."""
        self.windows[user][self.windows.table.window.current(session.updated_at)] = session

    def forget(self, user: str, now: float) -> None:
        """Remove the user's session from every window `latest` reads."""
        for window in self._readable(now):
            self.windows.table.pop((user, window), None)

    def _readable(self, now: float) -> tuple[WindowRange, WindowRange]:
        """The windows that can hold a session not idle at `now`: now's and the one before."""
        window = self.windows.table.window
        return window.current(now), window.delta(now, self.idle_s)


def sessions_table(app: faust.App, settings: Settings) -> Sessions:
    idle = settings.session_idle_s
    table = app.Table(
        SESSIONS_TABLE,
        key_type=str,
        value_type=Session,
        partitions=settings.partitions,
        help="per-user conversation history",
    )
    return Sessions(table.tumbling(idle, expires=timedelta(seconds=2 * idle)), idle)
