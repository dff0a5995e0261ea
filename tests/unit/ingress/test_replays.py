"""A signed query goes with one body: WeChat's retries pass, a forged body does not."""

from __future__ import annotations

from app.ingress.replays import ReplayGuard


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_same_query_passes_with_its_own_body_only():
    guard = ReplayGuard(window_s=300, clock=Clock())
    assert guard.admits("shop", "ab12", b"<xml>hello</xml>")
    assert guard.admits("shop", "AB12", b"<xml>hello</xml>"), "WeChat's retry"
    assert not guard.admits("shop", "ab12", b"<xml>forged</xml>")
    assert guard.admits("other", "ab12", b"<xml>forged</xml>"), "another account's query"


def test_queries_are_forgotten_once_their_window_is_over():
    clock = Clock()
    guard = ReplayGuard(window_s=300, clock=clock)
    guard.admits("shop", "ab12", b"one")
    clock.now += 301  # the timestamp check rejects the query from now on anyway
    assert guard.admits("shop", "ab12", b"two")


def test_memory_is_bounded_by_forgetting_the_oldest():
    guard = ReplayGuard(window_s=300, max_entries=2, clock=Clock())
    for signature in ("s1", "s2", "s3"):
        guard.admits("shop", signature, b"body")
    assert guard.admits("shop", "s1", b"another body"), "forgotten"
    assert not guard.admits("shop", "s3", b"another body")
