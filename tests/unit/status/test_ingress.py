"""The ingress's spool depth read from its Prometheus exposition."""

from __future__ import annotations

from prometheus_client import generate_latest

from app.ingress.metrics import IngressMetrics
from app.status.ingress import spool_depth


def test_spool_depth_from_the_ingress_metrics():
    metrics = IngressMetrics()
    metrics.spool_depth.set(17)
    metrics.requests.labels("demo", "safe", "accepted").inc()
    assert spool_depth(generate_latest(metrics.registry).decode()) == 17


def test_no_spool_depth_in_other_metrics():
    assert spool_depth("# TYPE other gauge\nother 3\n") is None
