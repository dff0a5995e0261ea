"""The status snapshot built from a worker's registry."""

from __future__ import annotations

import json

import pytest

from app.status.collect import (
    AgentStatus,
    BreakerStatus,
    Count,
    IngressStatus,
    PartitionLag,
    StatusSnapshot,
    TableStatus,
    build_snapshot,
)
from tests.unit.status.conftest import CLEAN, RAW


def snapshot_of(busy_worker, **changes) -> StatusSnapshot:
    agents, _ = busy_worker
    options = dict(
        worker="http://127.0.0.1:6066",
        taken_at=1_714_000_000.0,
        ready=True,
        throughput={"wxstream.dedupe": 1.5},
        ingress=IngressStatus("http://127.0.0.1:8080", 0),
    )
    options.update(changes)
    return build_snapshot(agents.registry.collect(), **options)


def test_agents_with_totals_rates_and_mean_time(busy_worker):
    assert snapshot_of(busy_worker).agents == (
        AgentStatus("wxstream.conversation", 20, 0.0, pytest.approx(0.020)),
        AgentStatus("wxstream.dedupe", 30, 1.5, None),
    )


def test_lag_by_partition_sorted_with_its_total(busy_worker):
    snapshot = snapshot_of(busy_worker)
    assert snapshot.lag == (PartitionLag(CLEAN, 0, 2), PartitionLag(RAW, 0, 0), PartitionLag(RAW, 1, 4))
    assert snapshot.total_lag == 6


def test_tables_and_breakers_by_name(busy_worker):
    snapshot = snapshot_of(busy_worker)
    assert snapshot.tables == (TableStatus("seen-v1", 30), TableStatus("sessions-v1", 12))
    assert snapshot.breakers == (BreakerStatus("echo", "closed"), BreakerStatus("glm4", "open"))


def test_counts_are_summed_over_accounts(busy_worker):
    snapshot = snapshot_of(busy_worker)
    assert snapshot.replies_by_source == (Count("keyword", 2), Count("model", 18))
    assert snapshot.drops_by_reason == (Count("rate_limited", 4), Count("unknown_account", 1))
    assert snapshot.dead_letters_by_reason == (Count("undecodable", 1),)


def test_a_fresh_worker_has_an_empty_snapshot():
    from agents.metrics import AgentMetrics

    snapshot = build_snapshot(AgentMetrics().registry.collect(), worker="w", taken_at=0.0, ready=False, throughput={})
    assert (snapshot.agents, snapshot.lag, snapshot.tables, snapshot.breakers) == ((), (), (), ())
    assert (snapshot.replies_by_source, snapshot.drops_by_reason, snapshot.ingress) == ((), (), None)


def test_as_dict_is_json_without_accounts(busy_worker):
    data = snapshot_of(busy_worker).as_dict()
    text = json.dumps(data)
    assert data["total_lag"] == 6
    assert data["ingress"] == {"url": "http://127.0.0.1:8080", "spool_depth": 0}
    for account in ("shop", "demo", "ghost"):  # counts only, never who
        assert f'"{account}"' not in text
