"""Access tokens as WeChat issues and checks them.

`/cgi-bin/token` hands out a new token on every call; the previous one keeps working for a
grace period. `/cgi-bin/stable_token` returns the same token while it lives, unless
`force_refresh`, which replaces it at once. The two kinds are independent, as at WeChat.
Every fetch counts against the account's daily quota.
"""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Mapping

from app.simulator import errcodes
from app.simulator.clock import SimClock
from app.simulator.config import ApiLimits, SimAccount

__all__ = ("Issued", "TokenBook")


@dataclass
class _Token:
    appid: str
    expires_at: float
    revoked_at: float | None = None


@dataclass(frozen=True)
class Issued:
    """A token fetch's answer: a token and its remaining life, or an errcode."""

    errcode: int = errcodes.OK
    access_token: str = ""
    expires_in: int = 0

    def body(self) -> dict[str, object]:
        if self.errcode:
            return errcodes.error_body(self.errcode)
        return {"access_token": self.access_token, "expires_in": self.expires_in}


@dataclass
class TokenBook:
    accounts: Mapping[str, SimAccount]  # by name
    clock: SimClock
    limits: ApiLimits = field(default_factory=ApiLimits)
    _tokens: dict[str, _Token] = field(default_factory=dict)
    _latest: dict[tuple[str, str], str] = field(default_factory=dict)  # (appid, kind) -> token
    _fetches: Counter = field(default_factory=Counter)  # (appid, day) -> fetches

    def fetch(self, appid: str, secret: str, *, stable: bool = False, force_refresh: bool = False) -> Issued:
        errcode = self._admit(appid, secret)
        if errcode:
            return Issued(errcode)
        now = self.clock.now()
        kind = "stable" if stable else "token"
        latest = self._latest.get((appid, kind), "")
        current = self._tokens.get(latest)
        if stable and not force_refresh and current and self._usable(current, now):
            return Issued(access_token=latest, expires_in=int(current.expires_at - now))
        if current is not None:  # replaced: at once, or after the grace period of /cgi-bin/token
            cutoff = now + (0.0 if stable else self.limits.token_grace_s)
            current.revoked_at = cutoff if current.revoked_at is None else min(current.revoked_at, cutoff)
        token = secrets.token_urlsafe(96)
        self._tokens[token] = _Token(appid, expires_at=now + self.limits.token_lifetime_s)
        self._latest[(appid, kind)] = token
        return Issued(access_token=token, expires_in=int(self.limits.token_lifetime_s))

    def _admit(self, appid: str, secret: str) -> int:
        """Check the credentials and count the fetch against the quota; 0 or the errcode."""
        if not appid:
            return errcodes.APPID_MISSING
        if not secret:
            return errcodes.APPSECRET_MISSING
        account = self._account(appid)
        if account is None:
            return errcodes.INVALID_APPID
        if account.secret is None or not secrets.compare_digest(secret.encode(), account.secret.encode()):
            return errcodes.INVALID_APPSECRET
        day = (appid, self.clock.day())
        if self._fetches[day] >= self.limits.daily_token_quota:
            return errcodes.DAILY_QUOTA
        self._fetches[day] += 1
        return errcodes.OK

    def check(self, token: str) -> tuple[int, SimAccount | None]:
        """errcode 0 and the token's account, or 41001 (none), 40001 (unknown or
        replaced) or 42001 (expired)."""
        if not token:
            return errcodes.ACCESS_TOKEN_MISSING, None
        record = self._tokens.get(token)
        if record is None:
            return errcodes.INVALID_CREDENTIAL, None
        now = self.clock.now()
        if record.revoked_at is not None and now >= record.revoked_at:
            return errcodes.INVALID_CREDENTIAL, None
        if now >= record.expires_at:
            return errcodes.ACCESS_TOKEN_EXPIRED, None
        return errcodes.OK, self._account(record.appid)

    def fetches_today(self, appid: str) -> int:
        return self._fetches[(appid, self.clock.day())]

    def _account(self, appid: str) -> SimAccount | None:
        return next((a for a in self.accounts.values() if a.appid == appid), None)

    @staticmethod
    def _usable(token: _Token, now: float) -> bool:
        return now < token.expires_at and (token.revoked_at is None or now < token.revoked_at)
