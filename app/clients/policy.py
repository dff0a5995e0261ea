"""The model client's decisions, pure: what an error is, whether and when to retry, and
which model a user is routed to."""

from __future__ import annotations

import asyncio
import hashlib
import random
from dataclasses import dataclass
from typing import Callable

__all__ = ("NEUTRAL_KINDS", "GrayRelease", "RetryPolicy", "classify", "parse_accounts")

# Errors that say nothing about the server's health (the request itself was wrong): they
# neither open nor close a circuit breaker.
NEUTRAL_KINDS = frozenset({"invalid_argument"})


def classify(exc: BaseException) -> str:
    """The kind of a failed call: the gRPC status in lower case (`unavailable`,
    `deadline_exceeded`, `invalid_argument`, `not_found`, ...), else `error`."""
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "deadline_exceeded"
    status = getattr(exc, "status", None)  # tritonclient's InferenceServerException
    text = status() if callable(status) else None
    if text is None:
        code = getattr(exc, "code", None)  # a bare grpc.aio.AioRpcError
        text = str(code()) if callable(code) else None
    if text and text.startswith("StatusCode."):
        return text.removeprefix("StatusCode.").lower()
    return "error"


@dataclass(frozen=True)
class RetryPolicy:
    """Retry UNAVAILABLE only, at most `retries` times, after a jittered exponential pause
    (50..100% of `base_s * 2**attempt`, at most `max_s`), and only while the pause leaves
    time before the deadline. A deadline exceeded is never retried: the time is gone; an
    invalid argument never: it would fail again."""

    retries: int = 2
    base_s: float = 0.05
    max_s: float = 1.0

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """The pause before retry number `attempt + 1` (attempt 0: after the first try)."""
        ceiling = min(self.max_s, self.base_s * (2**attempt))
        return ceiling * (0.5 + 0.5 * rng())

    def should_retry(self, kind: str, attempt: int, remaining_s: float, delay_s: float) -> bool:
        """Whether to try again after `attempt + 1` failed tries, the last of `kind`."""
        return kind == "unavailable" and attempt < self.retries and remaining_s > delay_s


def parse_accounts(text: str) -> frozenset[str]:
    """`"shop, news"` -> {"shop", "news"}."""
    return frozenset(name.strip() for name in text.split(",") if name.strip())


@dataclass(frozen=True)
class GrayRelease:
    """Which model answers a user: the candidate for every user of `accounts` and for a
    `share` of all users (chosen by a hash of the user key, so a user stays on one model,
    and raising the share only adds users), else the stable model."""

    stable: str
    candidate: str | None = None
    share: float = 0.0
    accounts: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"share must be within 0..1, got {self.share}")

    @property
    def models(self) -> tuple[str, ...]:
        active = self.candidate is not None and self.candidate != self.stable and (self.share > 0 or self.accounts)
        return (self.stable, self.candidate) if active else (self.stable,)  # type: ignore[return-value]

    @staticmethod
    def bucket(user: str) -> float:
        """The user's place in [0, 1): the same in every process and every release."""
        digest = hashlib.sha256(user.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def model_for(self, account: str, user: str) -> str:
        if self.candidate is None or self.candidate == self.stable:
            return self.stable
        if account in self.accounts:
            return self.candidate
        if self.share > 0 and self.bucket(user) < self.share:
            return self.candidate
        return self.stable

