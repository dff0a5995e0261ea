"""The WeChat simulator against the real stack: 50 safe-mode messages from 10 users, each
answered once, passively, with the user's text (the echo model), in each user's order."""

from __future__ import annotations

import base64
from collections import Counter
from pathlib import Path

import pytest

from app.accounts import load_accounts
from app.simulator.state import SimState
from app.simulator.traffic import TrafficPlan, drive
from tests.integration.stack_helpers import isolated_settings, running_stack

pytestmark = pytest.mark.integration

KEY = base64.b64encode(b"s" * 32).decode().rstrip("=")
ACCOUNTS_TOML = f"""
[accounts.shop]
token = "shop-token"
appid = "wxsimshop00000001"
secret = "shop-app-secret"
aes_keys = ["{KEY}"]
mode = "safe"
original_id = "gh_simshop0001"
"""


async def test_fifty_messages_from_ten_users_each_get_one_passive_reply_in_order(tmp_path: Path):
    accounts_file = tmp_path / "accounts.toml"
    accounts_file.write_text(ACCOUNTS_TOML, encoding="utf-8")
    settings = isolated_settings(tmp_path / "data", accounts=accounts_file)
    state = SimState.of(load_accounts(settings).values())

    with running_stack(settings) as stack:
        ingress_url = stack.child_settings.ingress_url
        report = await drive(state, ingress_url, TrafficPlan(rate=10, users=10, count=50, seed=1))

    outcomes = sorted(report.outcomes, key=lambda o: o.message.seq)
    assert len(outcomes) == 50
    assert [(o.result, o.attempts) for o in outcomes] == [("passive", 1)] * 50, [o.error for o in outcomes if o.error]
    assert all(o.reply == o.message.text and o.reply_type == "text" for o in outcomes)

    received = state.recorder.received("shop")
    assert all(item.path == "passive" for item in received)
    assert Counter(item.in_reply_to for item in received) == Counter({o.message.msg_id: 1 for o in outcomes})

    users = {o.message.user for o in outcomes}
    assert len(users) == 10
    for user in users:
        said = [o.message.text for o in outcomes if o.message.user == user]
        assert len(said) == 5
        assert state.recorder.texts("shop", user.openid) == said
