"""A flood of rejected callbacks costs a few log lines, each saying how many it stands for."""

from __future__ import annotations

import logging

from app.ingress.rejections import RejectionLog


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_account_and_reason_per_interval_with_the_count_left_out(caplog):
    clock = Clock()
    rejections = RejectionLog(interval_s=10.0, clock=clock)

    with caplog.at_level(logging.INFO, logger="wxstream.ingress"):
        for _ in range(500):
            rejections.rejected("POST", "shop", "bad_signature", "signature mismatch")
            clock.now += 0.01
        rejections.rejected("POST", "shop", "stale_timestamp", "timestamp 1 is ...")
        clock.now += 10
        rejections.rejected("POST", "shop", "bad_signature", "signature mismatch")

    assert [record.getMessage() for record in caplog.records] == [
        "rejected POST callback for shop: bad_signature (signature mismatch)",
        "rejected POST callback for shop: stale_timestamp (timestamp 1 is ...)",
        "rejected POST callback for shop: bad_signature (signature mismatch); 499 more like it in the last 15s",
    ]
