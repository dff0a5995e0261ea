"""Sending one text message to one user, whatever WeChat answers: the retry loop.

Credential errors get one token refresh at once, and a fresh token for each retry after
that; -1 and connections not made get jittered retries up to the budget; WeChat's "not
now" answers (48 h window, too many messages, no API) come back as MAILBOX, everything
else as DEAD_LETTER with the reason, for the caller to act on. A send that reached
WeChat but got no answer (a timeout, a dropped connection) is not
retried: the message may have arrived, and WeChat has no way to send it only once. It is
dead-lettered with that reason, as a send interrupted by a crash is.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from typing import Awaitable, Callable

from app.accounts import Account
from app.clients.policy import RetryPolicy
from app.outbound.api import ApiError, WeChatApi
from app.outbound.policy import Action, action_for
from app.outbound.tokens import TokenCache, TokenRefused

__all__ = ("Outcome", "Sender")

log = logging.getLogger("wxstream.outbound.sender")


@dataclass(frozen=True)
class Outcome:
    action: Action  # SENT, MAILBOX or DEAD_LETTER
    reason: str = ""
    retries: int = 0


class Sender:
    def __init__(
        self,
        api: WeChatApi,
        tokens: TokenCache,
        retry: RetryPolicy,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._api = api
        self._tokens = tokens
        self._retry = retry
        self._sleep = sleep
        self._rng = rng

    @staticmethod
    def can_use_api(account: Account) -> bool:
        return account.certified and account.secret is not None

    async def send_text(self, account: Account, openid: str, text: str) -> Outcome:
        if not self.can_use_api(account):
            why = "uncertified account" if not account.certified else "account has no secret"
            return Outcome(Action.MAILBOX, f"no customer-service API: {why}")
        refreshed = False
        failures = 0
        while True:
            token = ""
            try:
                token = await self._tokens.get(account)
                errcode = await self._api.send_text(token, openid, text)
                reason = f"errcode {errcode}"
            except TokenRefused as exc:
                errcode, reason = exc.errcode, str(exc)
            except ApiError as exc:
                if exc.may_have_arrived:
                    return Outcome(Action.DEAD_LETTER, f"{exc}; it may have arrived, so it is not sent again", failures)
                errcode, reason = -1, str(exc)
            action = action_for(errcode)
            if action is Action.REFRESH_TOKEN and token:
                self._tokens.invalidate(account.name, token)  # a rejected token is not used again
                if not refreshed:
                    refreshed = True
                    continue
            if action in (Action.RETRY, Action.REFRESH_TOKEN):
                if failures >= self._retry.retries:
                    return Outcome(Action.DEAD_LETTER, f"gave up after {failures + 1} attempts: {reason}", failures)
                delay = self._retry.delay(failures, self._rng)
                failures += 1
                log.info("retrying a message to %s of %s in %.2fs: %s", openid, account.name, delay, reason)
                await self._sleep(delay)
                continue
            return Outcome(action, "" if action is Action.SENT else reason, failures)

    async def close(self) -> None:
        await self._api.close()

    async def typing(self, account: Account, openid: str) -> None:
        """Best effort: a failed indicator is not worth a retry."""
        if not self.can_use_api(account):
            return
        try:
            await self._api.typing(await self._tokens.get(account), openid)
        except (ApiError, TokenRefused) as exc:
            log.debug("typing indicator for %s failed: %s", openid, exc)
