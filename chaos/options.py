"""How hard and how long a chaos run pushes: the load, the faults, the attacks."""

from __future__ import annotations

from dataclasses import dataclass

from app.simulator.traffic import TrafficPlan
from chaos.harness import ACCOUNT

__all__ = ("ChaosOptions",)


@dataclass(frozen=True)
class ChaosOptions:
    messages: int = 2000  # users' messages per scenario under load
    rate: float = 20.0  # messages per second, open loop
    users: int = 50
    seed: int = 1
    fault_at: float = 0.3  # when the fault strikes, as a share of the load's duration
    outage_s: float = 10.0  # how long tritonserver stays down, or the broker frozen
    settle_s: float = 120.0  # longest wait for the last answers once the load has been sent
    quiet_s: float = 5.0  # then nothing more may arrive for this long (a second answer would)
    attack_messages: int = 50  # users' messages sent beside the hostile flood and after the fuzz run
    hostile_rounds: int = 20  # times the whole hostile catalogue is sent
    fuzz_requests: int = 2000
    concurrency: int = 8  # hostile or fuzzed requests in flight at once
    partitions: int | None = None  # None: the default of WXSTREAM_PARTITIONS

    def __post_init__(self) -> None:
        if min(self.messages, self.users, self.attack_messages, self.concurrency) < 1 or not self.rate > 0:
            raise ValueError("messages, users, attack messages, concurrency and rate must be > 0")
        if not 0 <= self.fault_at < 1:
            raise ValueError("fault_at is a share of the load's duration: 0 <= fault_at < 1")
        if min(self.outage_s, self.settle_s, self.quiet_s, self.hostile_rounds, self.fuzz_requests) < 0:
            raise ValueError("durations and counts must be >= 0")

    @property
    def load_s(self) -> float:
        return self.messages / self.rate

    @property
    def fault_delay_s(self) -> float:
        return self.fault_at * self.load_s

    def plan(self, count: int | None = None, seed_offset: int = 0) -> TrafficPlan:
        """Text messages from `users` users of the safe-mode account, each user's in order."""
        return TrafficPlan(
            rate=self.rate,
            users=self.users,
            count=self.messages if count is None else count,
            accounts=(ACCOUNT,),
            seed=self.seed + seed_offset,
        )
