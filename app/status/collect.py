"""A worker's status as one typed snapshot, built from its Prometheus registry (pure).

The page and `/metrics` therefore never disagree. Only counts and names of agents, topics,
tables, models and reasons appear: no account, user or message, so the page needs no token.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Iterable, Mapping

from prometheus_client import Metric
from prometheus_client.samples import Sample

from app.clients.breaker import STATE_VALUES

__all__ = (
    "AgentStatus",
    "Count",
    "IngressStatus",
    "PartitionLag",
    "StatusSnapshot",
    "TableStatus",
    "BreakerStatus",
    "build_snapshot",
)

_STATE_NAMES = {value: name for name, value in STATE_VALUES.items()}


@dataclass(frozen=True)
class AgentStatus:
    name: str
    events: int
    events_per_second: float
    mean_event_seconds: float | None  # None until an event was timed


@dataclass(frozen=True, order=True)
class PartitionLag:
    topic: str
    partition: int
    lag: int


@dataclass(frozen=True, order=True)
class TableStatus:
    name: str
    keys: int


@dataclass(frozen=True, order=True)
class BreakerStatus:
    model: str
    state: str  # closed | half_open | open


@dataclass(frozen=True)
class Count:
    name: str
    count: int


@dataclass(frozen=True)
class IngressStatus:
    """The ingress's spool depth as read from its `/metrics`; None when it did not answer."""

    url: str
    spool_depth: int | None


@dataclass(frozen=True)
class StatusSnapshot:
    worker: str
    taken_at: float
    ready: bool
    agents: tuple[AgentStatus, ...]
    lag: tuple[PartitionLag, ...]
    tables: tuple[TableStatus, ...]
    breakers: tuple[BreakerStatus, ...]
    replies_by_source: tuple[Count, ...]
    drops_by_reason: tuple[Count, ...]
    dead_letters_by_reason: tuple[Count, ...]
    ingress: IngressStatus | None

    @property
    def total_lag(self) -> int:
        return sum(row.lag for row in self.lag)

    def as_dict(self) -> dict:
        return {**asdict(self), "total_lag": self.total_lag}


def _samples(families: Iterable[Metric], name: str) -> list[Sample]:
    return [sample for family in families for sample in family.samples if sample.name == name]


def _totals_by(samples: Iterable[Sample], label: str) -> tuple[Count, ...]:
    """Sum of the samples per value of `label` (e.g. replies of all accounts by source);
    values not counted yet are left out (some series start at 0, for alerts' sake)."""
    totals: dict[str, float] = defaultdict(float)
    for sample in samples:
        totals[sample.labels[label]] += sample.value
    return tuple(Count(name, int(total)) for name, total in sorted(totals.items()) if total)


def _agents(families: list[Metric], throughput: Mapping[str, float]) -> tuple[AgentStatus, ...]:
    events = {s.labels["agent"]: s.value for s in _samples(families, "wxstream_faust_events_total")}
    timed = {s.labels["agent"]: s.value for s in _samples(families, "wxstream_faust_event_duration_seconds_count")}
    spent = {s.labels["agent"]: s.value for s in _samples(families, "wxstream_faust_event_duration_seconds_sum")}
    return tuple(
        AgentStatus(
            name=name,
            events=int(events[name]),
            events_per_second=throughput.get(name, 0.0),
            mean_event_seconds=spent[name] / timed[name] if timed.get(name) else None,
        )
        for name in sorted(events)
    )


def build_snapshot(
    families: Iterable[Metric],
    *,
    worker: str,
    taken_at: float,
    ready: bool,
    throughput: Mapping[str, float],
    ingress: IngressStatus | None = None,
) -> StatusSnapshot:
    """The snapshot of a worker whose registry yielded `families`; `throughput` is events
    per second by agent (the sensor's latest sample)."""
    families = list(families)
    return StatusSnapshot(
        worker=worker,
        taken_at=taken_at,
        ready=ready,
        agents=_agents(families, throughput),
        lag=tuple(
            sorted(
                PartitionLag(s.labels["topic"], int(s.labels["partition"]), int(s.value))
                for s in _samples(families, "wxstream_consumer_lag")
            )
        ),
        tables=tuple(
            sorted(TableStatus(s.labels["table"], int(s.value)) for s in _samples(families, "wxstream_faust_table_keys"))
        ),
        breakers=tuple(
            sorted(
                BreakerStatus(s.labels["model"], _STATE_NAMES.get(int(s.value), f"unknown ({s.value:g})"))
                for s in _samples(families, "wxstream_model_breaker_state")
            )
        ),
        replies_by_source=_totals_by(_samples(families, "wxstream_replies_total"), "source"),
        drops_by_reason=_totals_by(_samples(families, "wxstream_drops_total"), "reason"),
        dead_letters_by_reason=_totals_by(_samples(families, "wxstream_dead_letters_total"), "reason"),
        ingress=ingress,
    )
