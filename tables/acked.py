"""A Faust table whose writes can be awaited until the broker holds them.

Faust sends a table's changelog records in the background. Before an action that cannot
be undone (a message sent to a user), the sender must know that the table already says
it is under way, so that a restarted worker does not do it again: `await persisted()`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust

__all__ = ("AckedTable",)


class AckedTable(faust.Table):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unacked: list[asyncio.Future] = []

    def _track(self, sent: asyncio.Future) -> None:
        if len(self._unacked) >= 256:  # writes nobody awaited: keep only those in flight
            self._unacked = [future for future in self._unacked if not future.done()]
        self._unacked.append(sent)

    def on_key_set(self, key: Any, value: Any) -> None:
        sent = self.send_changelog(self.partition_for_key(key), key, value)
        self._track(sent)
        self._maybe_set_key_ttl(key, sent.message.partition)
        self._sensor_on_set(self, key, value)

    def on_key_del(self, key: Any) -> None:
        sent = self.send_changelog(self.partition_for_key(key), key, None, value_serializer="raw")
        self._track(sent)
        self._maybe_del_key_ttl(key, sent.message.partition)
        self._sensor_on_del(self, key)

    async def persisted(self) -> None:
        """Return once every change made so far is acknowledged by the broker. Callers may
        overlap: each waits for all the changes made before it called."""
        unacked = list(self._unacked)
        if unacked:
            await asyncio.gather(*unacked)
            self._unacked = [future for future in self._unacked if not future.done()]
