"""The model client's settings: parsed from `WXSTREAM_MODEL_*`, bad values named."""

from __future__ import annotations

import pytest

from app.settings import PREFIX, Settings, SettingsError


def from_env(**variables: str) -> Settings:
    return Settings.from_env({PREFIX + name: value for name, value in variables.items()})


def test_defaults():
    s = Settings()
    assert s.model_fallback_text.strip()
    assert (s.model_candidate, s.model_candidate_share, s.model_candidate_accounts) == (None, 0.0, "")
    assert s.model_max_in_flight >= s.model_max_in_flight_per_account >= 1


def test_read_from_the_environment():
    s = from_env(
        MODEL_FALLBACK_TEXT="稍后再试",
        MODEL_MAX_IN_FLIGHT="10",
        MODEL_MAX_IN_FLIGHT_PER_ACCOUNT="2",
        MODEL_MAX_WAITING="0",
        MODEL_MAX_WAIT_S="0.25",
        MODEL_RETRIES="0",
        MODEL_RETRY_BACKOFF_S="0.01",
        MODEL_RETRY_BACKOFF_MAX_S="0.5",
        MODEL_BREAKER_FAILURES="3",
        MODEL_BREAKER_COOLDOWN_S="2",
        MODEL_BREAKER_PROBES="2",
        MODEL_CANDIDATE="glm4-next",
        MODEL_CANDIDATE_SHARE="0.1",
        MODEL_CANDIDATE_ACCOUNTS="beta,gamma",
    )
    assert s.model_fallback_text == "稍后再试"
    assert (s.model_max_in_flight, s.model_max_in_flight_per_account, s.model_max_waiting) == (10, 2, 0)
    assert (s.model_max_wait_s, s.model_retries, s.model_retry_backoff_s, s.model_retry_backoff_max_s) == (0.25, 0, 0.01, 0.5)
    assert (s.model_breaker_failures, s.model_breaker_cooldown_s, s.model_breaker_probes) == (3, 2.0, 2)
    assert (s.model_candidate, s.model_candidate_share, s.model_candidate_accounts) == ("glm4-next", 0.1, "beta,gamma")
    assert Settings.from_env(s.to_env()) == s


def test_an_empty_candidate_is_no_candidate():
    assert from_env(MODEL_CANDIDATE=" ").model_candidate is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MODEL_CANDIDATE_SHARE", "1.5"),
        ("MODEL_CANDIDATE_SHARE", "-0.1"),
        ("MODEL_MAX_IN_FLIGHT", "0"),
        ("MODEL_MAX_IN_FLIGHT_PER_ACCOUNT", "0"),
        ("MODEL_BREAKER_FAILURES", "0"),
        ("MODEL_BREAKER_PROBES", "0"),
        ("MODEL_RETRIES", "-1"),
        ("MODEL_MAX_WAIT_S", "soon"),
        ("MODEL_BREAKER_COOLDOWN_S", "-1"),
    ],
)
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(SettingsError) as caught:
        from_env(**{name: value})
    assert PREFIX + name in str(caught.value)
