"""Everything WeChat's side knows, shared by the API server and the callback sender."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

from app.accounts import Account
from app.simulator.clock import SimClock
from app.simulator.config import ApiLimits, SimAccount, sim_accounts
from app.simulator.faults import FaultPlan
from app.simulator.recorder import Received, Recorder, Via
from app.simulator.stats import Stats
from app.simulator.tokens import TokenBook
from app.simulator.users import UserBook

__all__ = ("SimState",)


@dataclass
class SimState:
    accounts: Mapping[str, SimAccount]  # by name
    limits: ApiLimits = field(default_factory=ApiLimits)
    clock: SimClock = field(default_factory=SimClock)
    faults: FaultPlan = field(default_factory=FaultPlan)
    recorder: Recorder = field(default_factory=Recorder)
    stats: Stats = field(default_factory=Stats)
    tokens: TokenBook = field(init=False)
    users: UserBook = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = TokenBook(self.accounts, self.clock, self.limits)
        self.users = UserBook(self.clock, self.limits)

    @classmethod
    def of(cls, accounts: Iterable[Account], *, uncertified: Iterable[str] = (), **options: object) -> "SimState":
        """State for plain Accounts (all certified unless named in `uncertified`)."""
        return cls(sim_accounts(accounts, uncertified), **options)  # type: ignore[arg-type]

    def receive(
        self, account: str, openid: str, path: Via, text: str, *, msg_type: str = "text", in_reply_to: int | None = None
    ) -> Received:
        """A message reached the user: record it (at simulated time) and count it."""
        self.stats.received[path] += 1
        return self.recorder.add(
            account, openid, path, text=text, at=self.clock.now(), msg_type=msg_type, in_reply_to=in_reply_to
        )

    def reset(self) -> None:
        """Forget what was received and counted; tokens, users and faults stay."""
        self.recorder.reset()
        self.stats.reset()
