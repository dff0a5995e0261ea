"""What the sender does with each errcode of the customer-service API."""

from __future__ import annotations

import pytest

from app.outbound.policy import Action, action_for


@pytest.mark.parametrize(
    "errcode, action",
    [
        (0, Action.SENT),
        (-1, Action.RETRY),
        (40001, Action.REFRESH_TOKEN),
        (42001, Action.REFRESH_TOKEN),
        (45015, Action.MAILBOX),
        (45047, Action.MAILBOX),
        (48001, Action.MAILBOX),
        (45009, Action.DEAD_LETTER),
        (40164, Action.DEAD_LETTER),
        (40003, Action.DEAD_LETTER),
        (45002, Action.DEAD_LETTER),
        (99999, Action.DEAD_LETTER),
    ],
)
def test_action_for(errcode, action):
    assert action_for(errcode) is action
