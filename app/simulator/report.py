"""Counts and latencies of a traffic run: the per-second progress line and the summary."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.simulator.callbacks import Outcome

__all__ = ("Tally", "Report")


@dataclass
class Tally:
    sent: int = 0  # deliveries started
    passive: int = 0  # answered in the HTTP response
    acked: int = 0  # `success` or empty: the answer, if any, comes by the API
    failed: int = 0  # no 200 after every attempt, or an invalid reply
    retries: int = 0

    @property
    def in_flight(self) -> int:
        return self.sent - self.passive - self.acked - self.failed

    def add(self, outcome: Outcome) -> None:
        setattr(self, outcome.result, getattr(self, outcome.result) + 1)
        self.retries += outcome.retries

    def line(self) -> str:
        return (
            f"sent={self.sent} passive={self.passive} acked={self.acked} failed={self.failed} "
            f"retries={self.retries} in_flight={self.in_flight}"
        )


@dataclass
class Report:
    tally: Tally = field(default_factory=Tally)
    outcomes: list[Outcome] = field(default_factory=list)  # in completion order
    latencies_s: list[float] = field(default_factory=list)  # scheduled send -> final answer
    sending_s: float = 0.0  # from the first message to the last one sent
    elapsed_s: float = 0.0  # until every delivery ended

    def record(self, outcome: Outcome, latency_s: float) -> None:
        self.tally.add(outcome)
        self.outcomes.append(outcome)
        self.latencies_s.append(latency_s)

    def percentile(self, q: float) -> float:
        """The q-th percentile (0..100) of latencies, nearest rank; 0 without any."""
        if not self.latencies_s:
            return 0.0
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]

    def summary(self) -> str:
        rate = (self.tally.sent - 1) / self.sending_s if self.sending_s else 0.0
        return (
            f"{self.tally.line()}; {rate:.1f} messages/s for {self.sending_s:.1f}s, all done after "
            f"{self.elapsed_s:.1f}s; latency p50={self.percentile(50) * 1000:.0f}ms "
            f"p99={self.percentile(99) * 1000:.0f}ms max={max(self.latencies_s, default=0.0) * 1000:.0f}ms"
        )
