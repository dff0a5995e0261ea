"""What the simulator plays: the accounts it knows and the limits of WeChat's API.

The limits default to WeChat's published values; tests shrink them (a 5 s token, a quota
of 3) to reach the error paths quickly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from app.accounts import Account

__all__ = ("SimAccount", "ApiLimits", "sim_accounts")


@dataclass(frozen=True)
class SimAccount:
    """An Official Account as WeChat sees it: its callback secrets and API credentials."""

    account: Account
    certified: bool = True  # uncertified accounts have no customer-service API (48001)

    @property
    def name(self) -> str:
        return self.account.name

    @property
    def appid(self) -> str:
        return self.account.appid

    @property
    def secret(self) -> str | None:
        return self.account.secret


@dataclass(frozen=True)
class ApiLimits:
    token_lifetime_s: float = 7200.0
    # After /cgi-bin/token hands out a new token, the previous one still works this long.
    token_grace_s: float = 300.0
    # Token fetches per account per (simulated) day, both token endpoints together.
    daily_token_quota: int = 2000
    # Customer-service messages may reach a user this long after the user's last message.
    reply_window_s: float = 48 * 3600.0
    # ... and at most this many of them per message of the user.
    replies_per_message: int = 5
    max_content_bytes: int = 2048

    def __post_init__(self) -> None:
        if not self.token_lifetime_s > 0 or self.token_grace_s < 0:
            raise ValueError("the token lifetime must be > 0 and its grace period >= 0")
        if min(self.daily_token_quota, self.replies_per_message, self.max_content_bytes) < 0:
            raise ValueError("quotas and limits must be >= 0")


def sim_accounts(accounts: Iterable[Account], uncertified: Iterable[str] = ()) -> dict[str, SimAccount]:
    """SimAccounts by name; names in `uncertified` are flagged so."""
    flagged = set(uncertified)
    return {a.name: SimAccount(a, certified=a.certified and a.name not in flagged) for a in accounts}
