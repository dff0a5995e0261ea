"""Long replies cut into customer-service messages: whole characters, sentence ends."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.outbound.split import split_text


def sizes(parts: tuple[str, ...]) -> list[int]:
    return [len(part.encode("utf-8")) for part in parts]


def test_a_short_text_is_one_part():
    assert split_text("hello", 2048) == ("hello",)
    assert split_text("", 2048) == ("",)


def test_cuts_after_the_last_sentence_end_that_fits():
    text = "First sentence. Second sentence. Third one is long enough"
    parts = split_text(text, 40)
    assert parts[0] == "First sentence. Second sentence."
    assert "".join(parts) == text


def test_cuts_chinese_text_after_a_full_stop_never_inside_a_character():
    text = "你好。" * 400  # 3600 bytes
    parts = split_text(text, 2048)
    assert all(part.endswith("。") for part in parts)
    assert max(sizes(parts)) <= 2048
    assert "".join(parts) == text


def test_falls_back_to_whitespace_then_to_characters():
    assert split_text("aaaa bbbb cccc", 10) == ("aaaa bbbb ", "cccc")
    assert split_text("a" * 25, 10) == ("a" * 10, "a" * 10, "a" * 5)


def test_emoji_are_never_split():
    text = "😀" * 600  # 4 bytes each
    parts = split_text(text, 2048)
    assert sizes(parts) == [2048, 352]


def test_rejects_a_limit_below_one_character():
    with pytest.raises(ValueError):
        split_text("abc", 3)


@given(st.text(), st.integers(min_value=4, max_value=64))
def test_parts_join_back_and_fit(text, limit):
    parts = split_text(text, limit)
    assert "".join(parts) == text
    assert all(0 < size <= limit for size in sizes(parts)) or parts == ("",)
