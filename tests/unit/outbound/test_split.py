"""Long replies cut into customer-service messages: whole characters, sentence ends."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.outbound.split import cut_to_fit, split_text


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


def test_a_text_that_fits_is_not_cut():
    assert cut_to_fit("Short answer.", 40, "(more)") == ("Short answer.", "")


def test_a_long_text_is_cut_after_a_sentence_and_closed_by_the_ending():
    head, rest = cut_to_fit("One sentence. Two sentences. Three sentences.", 40, "(more)")
    assert (head, rest) == ("One sentence. Two sentences.\n\n(more)", "Three sentences.")


@given(st.text(min_size=1, max_size=400), st.integers(min_value=24, max_value=200))
def test_the_head_fits_and_with_the_rest_keeps_every_word(text, limit):
    head, rest = cut_to_fit(text, limit, "(more)")
    assert len(head.encode("utf-8")) <= limit
    if rest:
        assert head.endswith("\n\n(more)")
        assert "".join((head.removesuffix("\n\n(more)") + rest).split()) == "".join(text.split())
