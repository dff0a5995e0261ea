"""The Prometheus sensor: Faust's hooks counted by agent and topic, table sizes and
consumer lag sampled from the app."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from faust.types import TP
from prometheus_client import CollectorRegistry

from app.status.sensor import PrometheusSensor

RAW, CLEAN, CHANGELOG = "wxstream.events.raw.v1", "wxstream.events.clean.v1", "wxstream-sessions-v1-changelog"


@dataclass
class FakeTable:
    name: str
    keys: int

    def __len__(self) -> int:
        return self.keys


class FakeConsumer:
    def __init__(self, highwaters: dict[TP, int | None], started: bool = True) -> None:
        self.highwaters = highwaters
        self.started = started

    def assignment(self) -> set[TP]:
        return set(self.highwaters)

    def highwater(self, tp: TP) -> int | None:
        return self.highwaters[tp]


def fake_app(**changes) -> SimpleNamespace:
    app = SimpleNamespace(
        tables={"sessions-v1": FakeTable("sessions-v1", 12), "seen-v1": FakeTable("seen-v1", 30)},
        agents={
            "wxstream.dedupe": SimpleNamespace(channel=SimpleNamespace(topics=(RAW,))),
            "wxstream.conversation": SimpleNamespace(channel=SimpleNamespace(topics=(CLEAN,))),
        },
        consumer=FakeConsumer({TP(RAW, 0): 10, TP(RAW, 1): 0, TP(CLEAN, 0): 8, TP(CLEAN, 1): 5, TP(CHANGELOG, 0): 99}),
        monitor=SimpleNamespace(tp_committed_offsets={TP(RAW, 0): 7}, tp_read_offsets={TP(CLEAN, 0): 7}),
        rebalancing=False,
    )
    app.__dict__.update(changes)
    return app


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def sensor(registry: CollectorRegistry) -> PrometheusSensor:
    return PrometheusSensor(fake_app(), registry)


def test_events_are_counted_and_timed_by_agent(sensor: PrometheusSensor, registry: CollectorRegistry):
    stream = SimpleNamespace(prefix="wxstream.dedupe")
    for offset in range(3):
        state = sensor.on_stream_event_in(TP(RAW, 0), offset, stream, event=None)
        sensor.on_stream_event_out(TP(RAW, 0), offset, stream, event=None, state=state)

    assert registry.get_sample_value("wxstream_faust_events_total", {"agent": "wxstream.dedupe"}) == 3
    assert registry.get_sample_value("wxstream_faust_event_duration_seconds_count", {"agent": "wxstream.dedupe"}) == 3


def test_an_event_acknowledged_by_hand_is_counted_but_not_timed(sensor, registry):
    sensor.on_stream_event_out(TP(RAW, 0), 0, SimpleNamespace(prefix="wxstream.dedupe"), event=None, state=None)
    assert registry.get_sample_value("wxstream_faust_events_total", {"agent": "wxstream.dedupe"}) == 1
    assert registry.get_sample_value("wxstream_faust_event_duration_seconds_count", {"agent": "wxstream.dedupe"}) is None


def test_a_stream_that_is_not_an_agent_is_named_after_its_topic(sensor, registry):
    sensor.on_stream_event_out(TP(RAW, 0), 0, SimpleNamespace(prefix=""), event=None, state=None)
    assert registry.get_sample_value("wxstream_faust_events_total", {"agent": RAW}) == 1


def test_messages_by_topic_and_commit_time(sensor, registry):
    sensor.on_message_in(TP(RAW, 0), 0, message=None)
    sensor.on_message_in(TP(RAW, 1), 0, message=None)
    sensor.on_commit_completed(consumer=None, state=sensor.on_commit_initiated(consumer=None))

    assert registry.get_sample_value("wxstream_faust_messages_received_total", {"topic": RAW}) == 2
    assert registry.get_sample_value("wxstream_faust_commit_duration_seconds_count") == 1


def lags(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    return {
        (s.labels["topic"], s.labels["partition"]): s.value
        for family in registry.collect()
        for s in family.samples
        if s.name == "wxstream_consumer_lag"
    }


def test_sample_sets_table_keys(sensor, registry):
    sensor.sample()

    assert registry.get_sample_value("wxstream_faust_table_keys", {"table": "sessions-v1"}) == 12
    assert registry.get_sample_value("wxstream_faust_table_keys", {"table": "seen-v1"}) == 30


def test_lag_of_agents_topics_is_read_with_the_registry(sensor, registry):
    # raw/1 is empty; clean/1 was neither read nor committed here, so its lag is unknown;
    # the changelog is not an agent's topic.
    assert lags(registry) == {(RAW, "0"): 3, (RAW, "1"): 0, (CLEAN, "0"): 0}


def test_lag_follows_the_assignment(registry):
    app = fake_app()
    PrometheusSensor(app, registry)
    app.consumer = FakeConsumer({TP(RAW, 1): 0})
    assert lags(registry) == {(RAW, "1"): 0}


@pytest.mark.parametrize("changes", [{"rebalancing": True}, {"consumer": FakeConsumer({TP(RAW, 0): 10}, started=False)}])
def test_no_lag_before_the_consumer_runs_or_during_a_rebalance(registry, changes):
    PrometheusSensor(fake_app(**changes), registry)
    assert lags(registry) == {}


def test_sample_measures_throughput_between_samples(sensor, monkeypatch):
    clock = iter([100.0, 102.0])
    monkeypatch.setattr("app.status.sensor.time.monotonic", lambda: next(clock))
    stream = SimpleNamespace(prefix="wxstream.conversation")
    sensor.sample()
    for offset in range(4):
        sensor.on_stream_event_out(TP(CLEAN, 0), offset, stream, event=None, state=None)
    sensor.sample()
    assert sensor.throughput.rates == {"wxstream.conversation": 2.0}
