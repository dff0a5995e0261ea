"""Who sends, and what kinds of messages: simulated users and the message mix.

Openids look like WeChat's (28 characters, starting with `o`) and are derived from a
seed, so a run can be repeated with the same users.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from typing import Sequence

__all__ = ("KINDS", "User", "population", "Mix")

KINDS = ("text", "voice", "image", "location", "subscribe", "click")
_OPENID_CHARS = string.ascii_letters + string.digits + "-_"


@dataclass(frozen=True)
class User:
    account: str
    openid: str


def population(accounts: Sequence[str], users: int, seed: int = 0) -> tuple[User, ...]:
    """`users` users of each account, interleaved across accounts."""
    if users < 1 or not accounts:
        raise ValueError("a population needs at least one account and one user")
    rng = random.Random(f"users:{seed}")
    return tuple(
        User(account, "o" + "".join(rng.choices(_OPENID_CHARS, k=27))) for _ in range(users) for account in accounts
    )


@dataclass(frozen=True)
class Mix:
    """Relative weights of message kinds, e.g. `text=8,voice=1,subscribe=1`."""

    weights: tuple[tuple[str, float], ...] = (("text", 1.0),)

    def __post_init__(self) -> None:
        if not self.weights or any(kind not in KINDS or weight < 0 for kind, weight in self.weights):
            raise ValueError(f"a mix weighs kinds among {', '.join(KINDS)} with numbers >= 0")
        if sum(weight for _, weight in self.weights) <= 0:
            raise ValueError("a mix needs a kind with a positive weight")

    @classmethod
    def parse(cls, spec: str) -> "Mix":
        """`kind[=weight],...`; a kind without a weight weighs 1."""
        weights = []
        for part in filter(None, (p.strip() for p in spec.split(","))):
            kind, _, weight = part.partition("=")
            try:
                weights.append((kind.strip(), float(weight) if weight else 1.0))
            except ValueError:
                raise ValueError(f"bad weight in {part!r}") from None
        return cls(tuple(weights))

    def pick(self, rng: random.Random) -> str:
        kinds, weights = zip(*self.weights)
        return rng.choices(kinds, weights)[0]
