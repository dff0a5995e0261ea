"""The record of what users received: arrival order over both paths, filters, reset."""

from __future__ import annotations

from app.simulator.recorder import Recorder
from tests.unit.simulator.conftest import make_state


def test_items_keep_arrival_order_across_paths_and_users():
    recorder = Recorder()
    recorder.add("shop", "o_a", "passive", text="1", at=10.0, in_reply_to=111)
    recorder.add("shop", "o_b", "api", text="2", at=11.0)
    recorder.add("shop", "o_a", "api", text="3", at=12.0)
    recorder.add("other", "o_a", "passive", text="4", at=13.0, msg_type="news")
    assert [item.seq for item in recorder.received()] == [0, 1, 2, 3]
    assert recorder.texts("shop", "o_a") == ["1", "3"]
    assert [i.path for i in recorder.received("shop", "o_a")] == ["passive", "api"]
    assert [i.text for i in recorder.received("shop")] == ["1", "2", "3"]
    assert [i.text for i in recorder.received(openid="o_a")] == ["1", "3", "4"]
    assert recorder.received("other")[0].to_json() == {
        "seq": 3,
        "account": "other",
        "openid": "o_a",
        "path": "passive",
        "msg_type": "news",
        "text": "4",
        "at": 13.0,
        "in_reply_to": None,
    }


def test_reset_empties_the_record():
    recorder = Recorder()
    recorder.add("shop", "o_a", "api", text="1", at=1.0)
    recorder.reset()
    assert len(recorder) == 0 and recorder.received() == []
    assert recorder.add("shop", "o_a", "api", text="2", at=2.0).seq == 0


def test_state_receive_stamps_simulated_time_and_counts():
    state = make_state()
    state.clock.advance(5)
    item = state.receive("shop", "o_a", "passive", "hi", in_reply_to=42)
    assert item.at == state.clock.now() and item.in_reply_to == 42
    assert state.stats.received["passive"] == 1
    state.users.interacted("shop", "o_a")
    state.reset()
    assert len(state.recorder) == 0 and state.stats.to_json() == {"api": {}, "callbacks": {}, "received": {}}
    assert state.users.get("shop", "o_a") is not None  # WeChat's own state is kept
