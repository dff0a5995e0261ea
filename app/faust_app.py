"""Faust's App, with flow control that never throws away events it has fetched.

Faust buffers fetched events in per-stream queues, and `app.flow_control.resume()` empties
those queues every time it is called. A rebalance calls it several times: once the
changelogs are read and again when the stream partitions are resumed, after the fetcher
has started filling the queues from them. The second call dropped events the fetcher had
already moved past. When a partition had no committed offset yet (a worker killed in its
first seconds), nothing seeked back to them: those messages were never processed, and the
partition's commits stopped at the first of them.

Here resume() empties the queues only when the flow was really suspended. A rebalance
suspends it and empties the queues itself before anything is revoked; events fetched
after the flow resumed belong to the new assignment and are processed. Seeking back to
the committed offsets may deliver some of them twice, which the agents absorb (the seen
table, reply ids): at least once, never fewer.
"""

from __future__ import annotations

import faust
from mode.utils.objects import cached_property
from mode.utils.queues import FlowControlEvent

__all__ = ("App", "KeepingFlowControl")


class KeepingFlowControl(FlowControlEvent):
    """Flow control whose resume() keeps what the queues hold unless the flow was suspended."""

    def resume(self) -> None:
        was_suspended = not self.is_active()
        self._suspend.clear()
        self._resume.set()
        if was_suspended:
            self.clear()


class App(faust.App):
    @cached_property
    def flow_control(self) -> FlowControlEvent:
        return KeepingFlowControl(loop=self.loop)
