"""One WeChat message through every real component, and nothing left running after."""

from __future__ import annotations

import pytest

from app.send import send_text

pytestmark = pytest.mark.integration


async def test_signed_text_message_gets_its_reply_on_the_replies_topic(start_stack, demo_account):
    stack = start_stack()
    settings = stack.child_settings

    answer = await send_text(settings, demo_account, "o_e2e_user", "hello, 世界 👋", timeout=60)

    assert answer.text == "hello, 世界 👋"  # the echo model answers with the prompt
    assert answer.path == "passive"  # in time for WeChat's deadline: in the HTTP response
