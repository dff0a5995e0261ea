"""Which users an account may still message, by WeChat's customer-service rules.

A user's message (or event such as a menu click) opens a window of 48 h in which the
account may send the user up to 5 messages; the user's next message resets the count.
Users are known from the callbacks the simulator sent, or registered explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.simulator import errcodes
from app.simulator.clock import SimClock
from app.simulator.config import ApiLimits

__all__ = ("UserBook", "UserState")


@dataclass
class UserState:
    last_message_at: float
    sent_since: int = 0
    subscribed: bool = True


@dataclass
class UserBook:
    clock: SimClock
    limits: ApiLimits = field(default_factory=ApiLimits)
    _users: dict[tuple[str, str], UserState] = field(default_factory=dict)  # (account, openid)

    def interacted(self, account: str, openid: str, *, unsubscribed: bool = False) -> None:
        """The user sent the account a message or an event (unsubscribe closes the window)."""
        self._users[(account, openid)] = UserState(self.clock.now(), subscribed=not unsubscribed)

    def in_window(self, account: str, openid: str) -> bool:
        """Whether the user is subscribed and messaged the account within the window."""
        state = self._users.get((account, openid))
        if state is None or not state.subscribed:
            return False
        return self.clock.now() - state.last_message_at <= self.limits.reply_window_s

    def may_send(self, account: str, openid: str) -> int:
        """errcode 0 when a customer-service message may go to the user now, else why not."""
        if not self.in_window(account, openid):
            return errcodes.REPLY_WINDOW_EXPIRED
        if self._users[(account, openid)].sent_since >= self.limits.replies_per_message:
            return errcodes.TOO_MANY_REPLIES
        return errcodes.OK

    def sent(self, account: str, openid: str) -> None:
        self._users[(account, openid)].sent_since += 1

    def get(self, account: str, openid: str) -> UserState | None:
        return self._users.get((account, openid))

    def __len__(self) -> int:
        return len(self._users)
