"""The outcome of one chaos scenario: its counts, its checks and its figures."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from chaos.ledger import Counts

__all__ = ("Check", "Findings", "ScenarioResult")


@dataclass(frozen=True)
class Check:
    """One property a scenario verifies beyond the counts, e.g. "sessions intact"."""

    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class Findings:
    """What a scenario found: the ledger's counts of the users' messages it followed, and
    the requests it made beside them (replays, hostile and fuzzed requests)."""

    counts: Counts
    checks: tuple[Check, ...] = ()
    more_sent: int = 0
    more_accepted: int = 0
    rejected: int | None = None  # hostile requests refused with the expected status
    figures: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScenarioResult:
    name: str
    title: str
    sent: int  # requests made: users' messages, and for attacks the other requests too
    accepted: int  # answered 200 (`success` or a passive reply)
    answered_once: int
    answered_twice: int  # twice or more
    lost: int  # accepted, never answered
    rejected: int | None = None
    checks: tuple[Check, ...] = ()
    seconds: float = 0.0
    figures: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, name: str, title: str, found: Findings, seconds: float) -> "ScenarioResult":
        """Replies that matched no message fail a check of their own."""
        stray = Check("no stray replies", found.counts.stray == 0, f"{found.counts.stray} replies matched no message")
        return cls(
            name=name,
            title=title,
            sent=found.counts.sent + found.more_sent,
            accepted=found.counts.accepted + found.more_accepted,
            answered_once=found.counts.answered_once,
            answered_twice=found.counts.answered_twice,
            lost=found.counts.lost,
            rejected=found.rejected,
            checks=(stray, *found.checks),
            seconds=seconds,
            figures=dict(found.figures),
        )

    @classmethod
    def crashed(cls, name: str, title: str, error: BaseException, seconds: float) -> "ScenarioResult":
        """A scenario that could not run to its end (a stack that did not start, ...)."""
        detail = f"{type(error).__name__}: {error}"
        return cls(name, title, 0, 0, 0, 0, 0, checks=(Check("ran to the end", False, detail),), seconds=seconds)

    @property
    def failed_checks(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    @property
    def passed(self) -> bool:
        return self.lost == 0 and self.answered_twice == 0 and not self.failed_checks

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "figures": dict(self.figures), "passed": self.passed}
