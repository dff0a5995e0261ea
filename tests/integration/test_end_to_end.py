"""One WeChat message through every real component, and nothing left running after."""

from __future__ import annotations

import pytest

from app.send import send_text
from tests.integration.stack_helpers import running_stack

pytestmark = pytest.mark.integration


async def test_signed_text_message_gets_its_reply_on_the_replies_topic(start_stack, demo_account):
    stack = start_stack()
    settings = stack.child_settings

    answer = await send_text(settings, demo_account, "o_e2e_user", "hello, 世界 👋", timeout=60)

    assert answer.text == "hello, 世界 👋"  # the echo model answers with the prompt
    assert answer.path == "passive"  # in time for WeChat's deadline: in the HTTP response


async def test_a_stack_started_again_on_the_same_data_dir_comes_up_and_answers(stack_settings, demo_account):
    # The embedded broker starts empty; the worker's tables from the first run must not
    # stop the second (Faust refuses local state ahead of its changelog).
    for text in ("first run", "second run"):
        with running_stack(stack_settings) as stack:
            answer = await send_text(stack.child_settings, demo_account, "o_e2e_restart", text, timeout=60)
            assert answer.text == text

