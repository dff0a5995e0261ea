"""The checker the deployment tests rely on: metrics read from source code, and PromQL
expressions judged against them."""

from __future__ import annotations

import textwrap

from agents.metrics import AgentMetrics
from app.ingress.metrics import IngressMetrics
from tests.unit.deploy.metrics import Series, grouping_labels, metrics_in_source, problems, selectors, wxstream_series

SOURCE = '''
from collections import Counter as Tally
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

LABELS = ["a"]
requests = Counter("demo_requests_total", "doc", ["outcome"])
depth = Gauge("demo_depth", "doc", registry=None)
latency = Histogram("demo_seconds", "doc", labelnames=("stage",))
dynamic = Counter("demo_dynamic", "doc", LABELS)
letters = Tally("not a metric")
lag = GaugeMetricFamily("demo_lag", "doc", labels=["topic"])
'''


def test_metrics_are_read_from_prometheus_client_constructors(tmp_path):
    path = tmp_path / "metrics.py"
    path.write_text(textwrap.dedent(SOURCE))
    found = metrics_in_source([path])
    assert found["demo_requests_total"] == Series("counter", frozenset({"outcome"}))
    assert found["demo_depth"] == Series("gauge", frozenset())
    assert found["demo_seconds_bucket"] == Series("histogram", frozenset({"stage", "le"}))
    assert found["demo_seconds_count"].labels == {"stage"}
    assert found["demo_dynamic_total"].labels is None
    assert found["demo_lag"] == Series("gauge", frozenset({"topic"}))
    assert not any(name.startswith("not") for name in found)


def test_the_source_catalogue_has_every_metric_the_registries_expose():
    exposed = {
        sample_name
        for registry in (IngressMetrics().registry, AgentMetrics().registry)
        for family in registry.collect()
        for sample_name in {
            "counter": [family.name + "_total"],
            "histogram": [family.name + suffix for suffix in ("_bucket", "_count", "_sum")],
        }.get(family.type, [family.name])
    }
    assert exposed <= set(wxstream_series())


CATALOGUE = {
    "demo_requests_total": Series("counter", frozenset({"outcome"})),
    "demo_depth": Series("gauge", frozenset()),
    "demo_seconds_bucket": Series("histogram", frozenset({"stage", "le"})),
}


def test_selectors_skip_functions_keywords_durations_and_grouping():
    expr = (
        'histogram_quantile(0.99, sum by (le, stage) (rate(demo_seconds_bucket[$__rate_interval]))) / 1e6 '
        'or vector(0) and on (instance) demo_depth{instance=~"a.*"} > bool 0'
    )
    assert [(s.name, set(s.labels)) for s in selectors(expr)] == [("demo_seconds_bucket", set()), ("demo_depth", {"instance"})]
    assert grouping_labels(expr) == {"le", "stage", "instance"}


def test_a_good_expression_has_no_problems():
    assert problems('sum by (outcome) (rate(demo_requests_total{outcome="ok"}[5m])) > 0.1', CATALOGUE) == []


def test_problems_are_named():
    assert problems("rate(demo_requests[5m])", CATALOGUE) == ["demo_requests is not exposed by any process"]
    assert "no label(s) ['reason']" in problems('demo_requests_total{reason="x"}', CATALOGUE)[0]
    assert "grouping by label(s) ['model']" in problems("sum by (model) (demo_depth)", CATALOGUE)[0]
    assert problems("rate(demo_depth[5m])", CATALOGUE) == ["rate()/increase() of demo_depth, a gauge"]
    assert "without a _bucket" in problems("histogram_quantile(0.9, demo_depth)", CATALOGUE)[0]
    assert "unbalanced" in problems("sum(rate(demo_requests_total[5m])", CATALOGUE)[0]
