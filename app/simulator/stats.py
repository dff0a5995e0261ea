"""Counters of what the simulator served and sent, for `/_sim/stats` and summaries."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ("Stats",)


@dataclass
class Stats:
    # "<endpoint> <errcode>" -> requests answered so (errcode 0: served)
    api: Counter = field(default_factory=Counter)
    # callbacks: sent, passive, acked, failed, retries, invalid_reply
    callbacks: Counter = field(default_factory=Counter)
    received: Counter = field(default_factory=Counter)  # path -> messages users received

    def answered(self, endpoint: str, errcode: int) -> None:
        self.api[f"{endpoint} {errcode}"] += 1

    def to_json(self) -> dict[str, dict[str, int]]:
        return {"api": dict(self.api), "callbacks": dict(self.callbacks), "received": dict(self.received)}

    def reset(self) -> None:
        self.api.clear()
        self.callbacks.clear()
        self.received.clear()
