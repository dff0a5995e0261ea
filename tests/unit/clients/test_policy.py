"""The model client's pure decisions: error kinds, retries with backoff, gray release."""

from __future__ import annotations

import asyncio
import statistics

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tritonclient.utils import InferenceServerException

from app.clients.policy import NEUTRAL_KINDS, GrayRelease, RetryPolicy, classify, parse_accounts

# --- classify ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        ("StatusCode.UNAVAILABLE", "unavailable"),
        ("StatusCode.DEADLINE_EXCEEDED", "deadline_exceeded"),
        ("StatusCode.INVALID_ARGUMENT", "invalid_argument"),
        ("StatusCode.NOT_FOUND", "not_found"),
        ("StatusCode.INTERNAL", "internal"),
        ("StatusCode.RESOURCE_EXHAUSTED", "resource_exhausted"),
    ],
)
def test_triton_errors_are_classified_by_their_grpc_status(status, kind):
    assert classify(InferenceServerException("boom", status=status)) == kind


def test_triton_errors_without_a_status_are_plain_errors():
    assert classify(InferenceServerException("unexpected")) == "error"


def test_bare_grpc_errors_are_classified_by_their_code():
    class Rpc(grpc.RpcError):
        def code(self):
            return grpc.StatusCode.UNAVAILABLE

    assert classify(Rpc()) == "unavailable"


def test_timeouts_are_deadline_exceeded():
    assert classify(asyncio.TimeoutError()) == "deadline_exceeded"
    assert classify(TimeoutError()) == "deadline_exceeded"


def test_anything_else_is_an_error():
    assert classify(RuntimeError("x")) == "error"
    assert classify(ValueError("StatusCode.UNAVAILABLE")) == "error"


def test_only_the_requests_own_faults_are_neutral_for_the_breaker():
    assert NEUTRAL_KINDS == {"invalid_argument"}


# --- retries -------------------------------------------------------------------------


def test_unavailable_is_retried_while_attempts_and_time_remain():
    policy = RetryPolicy(retries=2)
    assert policy.should_retry("unavailable", 0, remaining_s=5, delay_s=0.1)
    assert policy.should_retry("unavailable", 1, remaining_s=5, delay_s=0.1)
    assert not policy.should_retry("unavailable", 2, remaining_s=5, delay_s=0.1)


@pytest.mark.parametrize("kind", ["deadline_exceeded", "invalid_argument", "not_found", "internal", "error"])
def test_nothing_but_unavailable_is_retried(kind):
    assert not RetryPolicy(retries=10).should_retry(kind, 0, remaining_s=100, delay_s=0.01)


def test_no_retry_when_the_pause_would_use_up_the_deadline():
    policy = RetryPolicy(retries=5)
    assert not policy.should_retry("unavailable", 0, remaining_s=0.1, delay_s=0.1)
    assert not policy.should_retry("unavailable", 0, remaining_s=-1, delay_s=0.0)
    assert policy.should_retry("unavailable", 0, remaining_s=0.11, delay_s=0.1)


def test_zero_retries_never_retries():
    assert not RetryPolicy(retries=0).should_retry("unavailable", 0, remaining_s=100, delay_s=0)


def test_backoff_doubles_from_the_base_up_to_the_cap():
    policy = RetryPolicy(retries=10, base_s=0.1, max_s=1.0)
    upper = [policy.delay(attempt, rng=lambda: 1.0) for attempt in range(6)]
    assert upper == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    lower = [policy.delay(attempt, rng=lambda: 0.0) for attempt in range(6)]
    assert lower == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.5, 0.5])


def test_backoff_is_jittered():
    policy = RetryPolicy(retries=3, base_s=0.1, max_s=1.0)
    delays = [policy.delay(2) for _ in range(500)]
    assert all(0.2 <= d <= 0.4 for d in delays)
    assert statistics.pstdev(delays) > 0.03, "callers that failed together do not retry together"


@given(st.integers(0, 60), st.floats(0, 1))
def test_backoff_stays_within_half_and_all_of_its_ceiling(attempt, draw):
    policy = RetryPolicy(retries=100, base_s=0.05, max_s=2.0)
    ceiling = min(2.0, 0.05 * 2**attempt)
    assert ceiling / 2 <= policy.delay(attempt, rng=lambda: draw) <= ceiling


# --- gray release --------------------------------------------------------------------


def users(n: int, account: str = "shop") -> list[str]:
    return [f"{account}:o_user_{i}" for i in range(n)]


def test_without_a_candidate_everyone_gets_the_stable_model():
    release = GrayRelease("glm4")
    assert {release.model_for("shop", user) for user in users(200)} == {"glm4"}
    assert release.models == ("glm4",)


def test_a_candidate_with_no_share_and_no_accounts_gets_nobody():
    release = GrayRelease("glm4", "glm4-next", share=0.0)
    assert {release.model_for("shop", user) for user in users(200)} == {"glm4"}
    assert release.models == ("glm4",)


def test_a_candidate_equal_to_the_stable_model_is_no_release():
    release = GrayRelease("glm4", "glm4", share=1.0, accounts=frozenset({"shop"}))
    assert release.model_for("shop", "shop:o") == "glm4"
    assert release.models == ("glm4",)


def test_named_accounts_go_to_the_candidate_entirely():
    release = GrayRelease("glm4", "glm4-next", accounts=frozenset({"beta"}))
    assert {release.model_for("beta", user) for user in users(100, "beta")} == {"glm4-next"}
    assert {release.model_for("shop", user) for user in users(100)} == {"glm4"}
    assert release.models == ("glm4", "glm4-next")


def test_share_one_sends_everyone_to_the_candidate():
    release = GrayRelease("glm4", "glm4-next", share=1.0)
    assert {release.model_for("shop", user) for user in users(200)} == {"glm4-next"}


def test_the_share_of_users_on_the_candidate_is_about_the_setting():
    release = GrayRelease("glm4", "glm4-next", share=0.2)
    on_candidate = sum(release.model_for("shop", user) == "glm4-next" for user in users(5000))
    assert 900 < on_candidate < 1100


def test_a_user_always_gets_the_same_model():
    release = GrayRelease("glm4", "glm4-next", share=0.5)
    for user in users(100):
        assert len({release.model_for("shop", user) for _ in range(5)}) == 1


def test_the_bucket_is_stable_across_processes_and_releases():
    # sha256, not Python's per-process hash(): every worker routes a user the same way, and
    # changing the derivation would move users between models.
    assert GrayRelease.bucket("shop:o_user_1") == 0xBAF38B76827DC7BB / 2**64
    assert 0 <= GrayRelease.bucket("") < 1


@given(st.lists(st.text(min_size=1), min_size=1, max_size=30), st.floats(0, 1), st.floats(0, 1))
def test_raising_the_share_only_adds_users(keys, a, b):
    low, high = sorted((a, b))
    before = GrayRelease("s", "c", share=low)
    after = GrayRelease("s", "c", share=high)
    for key in keys:
        if before.model_for("acct", key) == "c":
            assert after.model_for("acct", key) == "c"


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_share_outside_zero_to_one_is_rejected(share):
    with pytest.raises(ValueError):
        GrayRelease("s", "c", share=share)


def test_accounts_list_parsing():
    assert parse_accounts("") == frozenset()
    assert parse_accounts(" shop , news,,") == {"shop", "news"}
