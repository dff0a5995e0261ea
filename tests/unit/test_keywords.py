"""Keyword rules: normalisation, exact and regex matching, order, and event triggers."""

from __future__ import annotations

import re

import pytest

from app.keywords import KeywordRule, match_rules, normalise, trigger_of


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello", "hello"),
        ("  hello   world \n", "hello world"),
        ("ＨＥＬＬＯ", "hello"),  # full-width letters
        ("价格？", "价格?"),  # full-width punctuation
        ("１２３", "123"),
        ("hello\u3000world", "hello world"),  # ideographic space
        ("Straße", "strasse"),
        ("", ""),
    ],
)
def test_normalise(text, expected):
    assert normalise(text) == expected


def test_normalise_is_idempotent():
    for text in ["ＨＥＬＬＯ  World", "价格？", "Straße\u3000X"]:
        assert normalise(normalise(text)) == normalise(text)


# --- exact ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["help", "HELP", " Help ", "ＨＥＬＰ", "\thelp\n"])
def test_exact_matches_after_normalisation(text):
    assert match_rules([KeywordRule("Help", "menu")], normalise(text)) == "menu"


@pytest.mark.parametrize("text", ["help me", "helps", "he lp", ""])
def test_exact_does_not_match_other_text(text):
    assert match_rules([KeywordRule("help", "menu")], normalise(text)) is None


def test_exact_pattern_is_normalised_too():
    rule = KeywordRule("  营业  时间？ ", "9-18")
    assert match_rules([rule], normalise("营业 时间?")) == "9-18"


# --- regex ---------------------------------------------------------------------------


def test_regex_searches_the_text():
    rule = KeywordRule(r"(price|价格)", "See the price list.", kind="regex")
    assert match_rules([rule], normalise("What is the PRICE?")) == "See the price list."
    assert match_rules([rule], normalise("请问价格多少")) == "See the price list."
    assert match_rules([rule], normalise("hello")) is None


def test_regex_anchors_apply():
    rule = KeywordRule(r"^(price|价格)", "list", kind="regex")
    assert match_rules([rule], "price please") == "list"
    assert match_rules([rule], "the price") is None


# --- order ---------------------------------------------------------------------------


def test_first_match_wins():
    rules = [
        KeywordRule("hello", "exact first"),
        KeywordRule("hel+o", "regex second", kind="regex"),
        KeywordRule("hello", "exact third"),
    ]
    assert match_rules(rules, "hello") == "exact first"
    assert match_rules(rules, "say helllo") == "regex second"
    assert match_rules(rules[1:], "hello") == "regex second"


def test_no_rules_no_match():
    assert match_rules([], "hello") is None
    assert match_rules((), "") is None


# --- construction --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["glob", "EXACT", "", "prefix"])
def test_invalid_kind_raises_at_construction(kind):
    with pytest.raises(ValueError, match="kind"):
        KeywordRule("a", "b", kind=kind)


@pytest.mark.parametrize("pattern", ["(", "[a-", "*x", "(?P<n>a)(?P<n>b)"])
def test_invalid_regex_raises_at_construction(pattern):
    with pytest.raises(re.error):
        KeywordRule(pattern, "b", kind="regex")


def test_invalid_regex_is_fine_as_an_exact_pattern():
    assert KeywordRule("(", "b").matches("(")


def test_rules_are_immutable():
    rule = KeywordRule("a", "b")
    with pytest.raises(AttributeError):
        rule.reply = "c"  # type: ignore[misc]


# --- triggers ------------------------------------------------------------------------


def test_trigger_of_text_is_its_normalised_content():
    assert trigger_of("text", {"Content": "  ＨＥＬＬＯ  World "}) == "hello world"
    assert trigger_of("text", {}) == ""


@pytest.mark.parametrize("event", ["subscribe", "SUBSCRIBE", "Subscribe"])
def test_trigger_of_subscribe_event(event):
    assert trigger_of("event", {"Event": event}) == "event:subscribe"


def test_trigger_of_other_events():
    assert trigger_of("event", {"Event": "unsubscribe"}) == "event:unsubscribe"
    assert trigger_of("event", {"Event": "SCAN", "EventKey": "123"}) == "event:scan"


@pytest.mark.parametrize("event", ["CLICK", "click"])
def test_trigger_of_menu_click(event):
    assert trigger_of("event", {"Event": event, "EventKey": "menu_help"}) == "click:menu_help"


def test_trigger_of_click_is_normalised_like_rule_patterns():
    assert trigger_of("event", {"Event": "CLICK", "EventKey": "V1001_Today"}) == "click:v1001_today"


def test_trigger_of_click_without_key():
    assert trigger_of("event", {"Event": "CLICK"}) == "click:"


@pytest.mark.parametrize("msg_type", ["image", "voice", "video", "location", "link"])
def test_other_messages_have_no_trigger(msg_type):
    assert trigger_of(msg_type, {"MediaId": "m1", "Content": "x"}) is None


def test_event_rules_match_their_triggers():
    rules = [
        KeywordRule("event:subscribe", "Welcome!"),
        KeywordRule("click:V1001_TODAY_MUSIC", "Today's music"),
    ]
    assert match_rules(rules, trigger_of("event", {"Event": "subscribe"})) == "Welcome!"
    # WeChat's menu keys are usually upper case; the rule is written the same way.
    click = trigger_of("event", {"Event": "CLICK", "EventKey": "V1001_TODAY_MUSIC"})
    assert match_rules(rules, click) == "Today's music"
    assert match_rules(rules, trigger_of("event", {"Event": "CLICK", "EventKey": "OTHER"})) is None


@pytest.mark.parametrize(
    ("msg_type", "fields", "expected"),
    [
        ("text", {"Content": "hi"}, True),
        ("voice", {"Recognition": "你好"}, True),
        ("voice", {"Recognition": ""}, False),
        ("image", {"PicUrl": "x"}, False),
        ("event", {"Event": "subscribe"}, True),
        ("event", {"Event": "CLICK", "EventKey": "nothing"}, False),
        ("event", {"Event": "unsubscribe"}, False),
    ],
)
def test_expects_answer_only_when_the_pipeline_will_reply(msg_type, fields, expected):
    from app.keywords import expects_answer

    rules = (KeywordRule(pattern="event:subscribe", reply="welcome"),)
    assert expects_answer(msg_type, fields, rules) is expected
