"""Access tokens per account: fetched once for all concurrent callers, renewed early.

A token is used until `margin_s` before it expires. When WeChat rejects one (40001,
42001), `invalidate` drops it; the next `get` fetches the stable token again, and forces
a new one if WeChat still hands out the rejected one.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from app.accounts import Account
from app.outbound.api import WeChatApi

__all__ = ("TokenCache", "TokenRefused")


class TokenRefused(RuntimeError):
    """WeChat refused to issue a token (bad secret, quota, IP not allowed, busy)."""

    def __init__(self, account: str, errcode: int) -> None:
        super().__init__(f"no access token for {account}: errcode {errcode}")
        self.errcode = errcode


class TokenCache:
    def __init__(self, api: WeChatApi, margin_s: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._api = api
        self._margin_s = margin_s
        self._clock = clock
        self._tokens: dict[str, tuple[str, float]] = {}  # account -> (token, use until)
        self._rejected: dict[str, str] = {}
        self._fetching: dict[str, asyncio.Future[str]] = {}

    async def get(self, account: Account) -> str:
        cached = self._tokens.get(account.name)
        if cached is not None and self._clock() < cached[1]:
            return cached[0]
        fetching = self._fetching.get(account.name)
        if fetching is None:
            fetching = self._fetching[account.name] = asyncio.ensure_future(self._fetch(account))
            fetching.add_done_callback(lambda _: self._fetching.pop(account.name, None))
        return await asyncio.shield(fetching)

    def invalidate(self, account: str, token: str) -> None:
        if self._tokens.get(account, ("",))[0] == token:
            del self._tokens[account]
        self._rejected[account] = token

    async def _fetch(self, account: Account) -> str:
        assert account.secret is not None, "accounts without a secret do not use the API"
        errcode, token = await self._api.stable_token(account.appid, account.secret)
        if token is not None and token.value == self._rejected.get(account.name):
            errcode, token = await self._api.stable_token(account.appid, account.secret, force_refresh=True)
        if token is None:
            raise TokenRefused(account.name, errcode)
        lifetime = token.expires_in_s
        self._tokens[account.name] = (token.value, self._clock() + max(lifetime - self._margin_s, lifetime / 2))
        self._rejected.pop(account.name, None)
        return token.value
