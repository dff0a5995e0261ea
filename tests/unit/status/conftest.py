"""A worker's registry as the worker fills it: the agents' metrics and Faust's."""

from __future__ import annotations

import pytest

from agents.metrics import AgentMetrics
from app.status.metrics import FaustMetrics

RAW, CLEAN = "wxstream.events.raw.v1", "wxstream.events.clean.v1"


@pytest.fixture
def busy_worker() -> tuple[AgentMetrics, FaustMetrics]:
    agents = AgentMetrics()
    faust = FaustMetrics(agents.registry, lags=lambda: [(RAW, 1, 4), (RAW, 0, 0), (CLEAN, 0, 2)])
    faust.events.labels("wxstream.dedupe").inc(30)
    faust.events.labels("wxstream.conversation").inc(20)
    for seconds in (0.010, 0.030):
        faust.event_duration.labels("wxstream.conversation").observe(seconds)
    faust.table_keys.labels("sessions-v1").set(12)
    faust.table_keys.labels("seen-v1").set(30)
    agents.model.breaker_state.labels("echo").set(0)
    agents.model.breaker_state.labels("glm4").set(2)
    agents.replies.labels("shop", "model").inc(15)
    agents.replies.labels("demo", "model").inc(3)
    agents.replies.labels("demo", "keyword").inc(2)
    agents.drops.labels("shop", "rate_limited").inc(4)
    agents.drops.labels("ghost", "unknown_account").inc()
    agents.dead_letters.labels("undecodable").inc()
    return agents, faust
