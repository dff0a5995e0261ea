"""Open-loop traffic: the schedule does not wait for answers, a user's messages stay in
order, and the report counts every outcome."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.simulator.callbacks import Timing
from app.simulator.population import Mix
from app.simulator.traffic import TrafficPlan, drive
from tests.unit.simulator.conftest import COMPAT, PLAIN, SAFE, echo, make_state


async def test_every_message_is_answered_and_recorded_per_user_in_order(ingress):
    url, fake = ingress
    state = make_state()
    plan = TrafficPlan(rate=200, users=3, count=30, accounts=(SAFE.name, COMPAT.name, PLAIN.name), seed=5)
    report = await drive(state, url, plan)
    tally = report.tally
    assert (tally.sent, tally.passive, tally.acked, tally.failed, tally.retries, tally.in_flight) == (30, 30, 0, 0, 0, 0)
    assert len(report.latencies_s) == 30 and report.percentile(99) < 1.0
    assert len(fake.requests) == 30
    by_user: dict[tuple[str, str], list[str]] = {}
    for outcome in sorted(report.outcomes, key=lambda o: o.message.seq):
        by_user.setdefault((outcome.message.user.account, outcome.message.user.openid), []).append(outcome.message.text)
    assert len(by_user) == 9
    for (account, openid), said in by_user.items():
        assert state.recorder.texts(account, openid) == said


async def test_schedule_does_not_wait_for_slow_answers(ingress):
    url, fake = ingress

    async def slow(message):
        await asyncio.sleep(0.3)
        return await echo(message)

    fake.behaviour = slow
    started = time.monotonic()
    report = await drive(make_state(), url, TrafficPlan(rate=100, users=20, count=20))
    assert time.monotonic() - started < 1.0  # 20 x 0.3 s if it waited
    assert report.tally.passive == 20
    assert min(report.latencies_s) >= 0.3


async def test_a_users_messages_wait_for_the_previous_delivery(ingress):
    url, fake = ingress
    arrivals: list[tuple[float, str]] = []

    async def slow(message):
        arrivals.append((time.monotonic(), message.raw["Content"]))
        await asyncio.sleep(0.1)
        return await echo(message)

    fake.behaviour = slow
    report = await drive(make_state(), url, TrafficPlan(rate=100, users=1, count=5, accounts=(SAFE.name,)))
    said = [o.message.text for o in sorted(report.outcomes, key=lambda o: o.message.seq)]
    assert [text for _, text in arrivals] == said
    gaps = [b - a for (a, _), (b, _) in zip(arrivals, arrivals[1:])]
    assert min(gaps) >= 0.1
    # latency runs from the due time: the queued messages show their wait
    assert max(report.latencies_s) >= 0.4


async def test_duration_bounds_the_run_and_ticks_report_progress(ingress):
    url, _ = ingress
    ticks = []
    plan = TrafficPlan(rate=20, duration_s=1.5)
    report = await drive(make_state(), url, plan, on_tick=lambda r: ticks.append(r.tally.sent))
    assert report.tally.sent == 30
    assert ticks and ticks[0] >= 10
    assert "sent=30 passive=30" in report.summary()


async def test_mixed_kinds_and_failures_are_counted(ingress):
    url, fake = ingress
    state = make_state()
    mix = Mix.parse("text,voice,subscribe,click")
    unreachable = TrafficPlan(rate=100, count=4, mix=mix)
    report = await drive(state, "http://127.0.0.1:9", unreachable, timing=Timing(deadline_s=0.5, retry_delay_s=0.01))
    assert (report.tally.failed, report.tally.retries) == (4, 8)
    assert state.stats.callbacks["failed"] == 4
    report = await drive(state, url, TrafficPlan(rate=200, count=40, mix=mix, seed=3))
    assert report.tally.passive == 40
    assert {type(m).__name__ for _, m in fake.requests} == {"TextMessage", "VoiceMessage", "SubscribeEvent", "ClickEvent"}


@pytest.mark.parametrize("kwargs", [{"rate": 0, "count": 1}, {"rate": 1}, {"rate": 1, "count": 1, "users": 0}])
def test_bad_plans_are_refused(kwargs):
    with pytest.raises(ValueError):
        TrafficPlan(**kwargs)


async def test_out_of_order_plans_do_not_wait_for_the_users_previous_message(ingress):
    url, fake = ingress

    async def slow(message):
        await asyncio.sleep(0.3)
        return await echo(message)

    fake.behaviour = slow
    started = time.monotonic()
    report = await drive(make_state(), url, TrafficPlan(rate=100, users=1, count=5, accounts=(SAFE.name,), in_order=False))
    assert report.tally.passive == 5
    assert time.monotonic() - started < 1.0  # 5 x 0.3 s in order
