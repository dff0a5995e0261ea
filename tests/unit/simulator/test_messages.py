"""What simulated users send: every kind's fields, distinct MsgIds, distinct event times,
seeded populations and message mixes."""

from __future__ import annotations

import random

import pytest

from app.simulator.messages import MessageFactory
from app.simulator.population import KINDS, Mix, User, population
from app.wechat.messages import from_fields
from tests.unit.simulator.conftest import SAFE, make_state

ACCOUNT = make_state().accounts[SAFE.name]
USER = User(SAFE.name, "o_user_1")


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_parses_as_wechats(kind):
    message = MessageFactory().build(0, ACCOUNT, USER, kind, now=1000.0)
    parsed = from_fields(message.fields)
    assert parsed.from_user == "o_user_1" and parsed.to_user == "gh_shop"
    expected = {"subscribe": "SubscribeEvent", "click": "ClickEvent"}.get(kind, kind.capitalize() + "Message")
    assert type(parsed).__name__ == expected


def test_texts_and_voice_recognition_are_what_the_user_said():
    factory = MessageFactory()
    text = factory.build(3, ACCOUNT, USER, "text")
    voice = factory.build(4, ACCOUNT, USER, "voice")
    assert text.text == text.fields["Content"] and "3" in text.text
    assert voice.text == voice.fields["Recognition"] and voice.fields["Format"] == "amr"


def test_msg_ids_are_distinct_and_events_have_none():
    factory = MessageFactory()
    messages = [factory.build(n, ACCOUNT, USER, kind) for n, kind in enumerate(KINDS * 20)]
    ids = [m.msg_id for m in messages if m.msg_id is not None]
    assert len(ids) == len(set(ids)) == 80
    assert all("MsgId" not in m.fields for m in messages if m.kind in ("subscribe", "click"))


def test_a_users_events_get_distinct_create_times():
    factory = MessageFactory()
    times = [factory.build(n, ACCOUNT, USER, "click", now=1000.5).create_time for n in range(3)]
    assert times == [1000, 1001, 1002]
    other = factory.build(9, ACCOUNT, User(SAFE.name, "o_other"), "click", now=1000.0)
    assert other.create_time == 1000


def test_population_is_seeded_and_looks_like_openids():
    users = population(["a", "b"], 3, seed=1)
    assert len(users) == 6 and [u.account for u in users[:2]] == ["a", "b"]
    assert all(len(u.openid) == 28 and u.openid.startswith("o") for u in users)
    assert population(["a", "b"], 3, seed=1) == users != population(["a", "b"], 3, seed=2)
    assert len({u.openid for u in users}) == 6
    with pytest.raises(ValueError):
        population([], 3)


def test_mix_parses_and_picks_by_weight():
    mix = Mix.parse("text=8, voice=1,click")
    assert mix.weights == (("text", 8.0), ("voice", 1.0), ("click", 1.0))
    rng = random.Random(2)
    picks = [mix.pick(rng) for _ in range(1000)]
    assert 700 < picks.count("text") < 900 and picks.count("voice") > 0


@pytest.mark.parametrize("spec", ["", "text=x", "sms=1", "text=-1", "text=0"])
def test_bad_mixes_are_refused(spec):
    with pytest.raises(ValueError):
        Mix.parse(spec)
