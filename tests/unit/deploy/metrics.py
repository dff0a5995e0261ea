"""Which Prometheus series exist, and whether a PromQL expression uses only those.

wxstream's own metrics are read from the code itself: every metric of prometheus_client
(`Counter`, `Gauge`, ..., or a custom collector's `GaugeMetricFamily`, ...) constructed
with a literal name under app/, agents/ or tables/, with its literal label names. Triton's and Prometheus's own series are
listed here, as their documentation names them.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from tests.unit.deploy.compose import ROOT

SOURCE_ROOTS = tuple(ROOT / name for name in ("app", "agents", "tables"))
# Labels Prometheus adds to every series it scrapes.
TARGET_LABELS = frozenset({"job", "instance"})

# Constructor: (kind, position of the label names, their keyword).
_CONSTRUCTORS = {
    "Counter": ("counter", 2, "labelnames"),
    "Gauge": ("gauge", 2, "labelnames"),
    "Histogram": ("histogram", 2, "labelnames"),
    "Summary": ("summary", 2, "labelnames"),
    "CounterMetricFamily": ("counter", 3, "labels"),
    "GaugeMetricFamily": ("gauge", 3, "labels"),
    "HistogramMetricFamily": ("histogram", 4, "labels"),
    "SummaryMetricFamily": ("summary", 4, "labels"),
}
_MODULES = {"prometheus_client", "prometheus_client.core", "prometheus_client.metrics_core"}


@dataclass(frozen=True)
class Series:
    kind: str  # counter, gauge, histogram, summary, or untyped (not wxstream's)
    labels: frozenset[str] | None  # None: not written literally where the metric is made

    @property
    def cumulative(self) -> bool:
        """Whether rate() and increase() mean something on it."""
        return self.kind != "gauge"


def _series_of(name: str, kind: str, labels: frozenset[str] | None) -> dict[str, Series]:
    """The series prometheus_client exposes for one metric (a counter's name loses a
    trailing `_total` when it is made, and gains it when it is exposed)."""
    if kind == "counter":
        base = name.removesuffix("_total")
        return {base + "_total": Series(kind, labels), base + "_created": Series("gauge", labels)}
    if kind == "histogram":
        bucket_labels = None if labels is None else labels | {"le"}
        return {
            name + "_bucket": Series(kind, bucket_labels),
            name + "_count": Series(kind, labels),
            name + "_sum": Series(kind, labels),
            name + "_created": Series("gauge", labels),
        }
    if kind == "summary":
        return {name + "_count": Series(kind, labels), name + "_sum": Series(kind, labels)}
    return {name: Series(kind, labels)}


def _literal_strings(node: ast.AST | None) -> frozenset[str] | None:
    if isinstance(node, (ast.List, ast.Tuple)) and all(
        isinstance(item, ast.Constant) and isinstance(item.value, str) for item in node.elts
    ):
        return frozenset(item.value for item in node.elts)
    return None


def _prometheus_names(tree: ast.Module) -> dict[str, str]:
    """Local names bound to prometheus_client's metric classes by `from ... import`."""
    return {
        alias.asname or alias.name: alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module in _MODULES
        for alias in node.names
        if alias.name in _CONSTRUCTORS
    }


def metrics_in_source(files: Iterable[Path]) -> dict[str, Series]:
    """Every series of the metrics constructed in `files`."""
    found: dict[str, Series] = {}
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        constructors = _prometheus_names(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in constructors):
                continue
            if not (node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                continue
            kind, position, keyword = _CONSTRUCTORS[constructors[node.func.id]]
            labels_node = node.args[position] if len(node.args) > position else None
            for argument in node.keywords:
                if argument.arg == keyword:
                    labels_node = argument.value
            none = labels_node is None or isinstance(labels_node, ast.Constant) and labels_node.value is None
            labels = frozenset() if none else _literal_strings(labels_node)
            found.update(_series_of(node.args[0].value, kind, labels))
    return found


def wxstream_series() -> dict[str, Series]:
    return metrics_in_source(path for root in SOURCE_ROOTS for path in sorted(root.rglob("*.py")))


# Triton's metrics port (8002): its inference counters and durations (cumulative, named
# without `_total`), GPU gauges, and the TensorRT-LLM backend's own.
_TRITON_INFERENCE = frozenset({"model", "version"})
EXTERNAL_SERIES: Mapping[str, Series] = {
    **{
        name: Series("untyped", _TRITON_INFERENCE)
        for name in (
            "nv_inference_request_success",
            "nv_inference_count",
            "nv_inference_exec_count",
            "nv_inference_pending_request_count",
            "nv_inference_request_duration_us",
            "nv_inference_queue_duration_us",
            "nv_inference_compute_input_duration_us",
            "nv_inference_compute_infer_duration_us",
            "nv_inference_compute_output_duration_us",
        )
    },
    "nv_inference_request_failure": Series("untyped", _TRITON_INFERENCE | {"reason"}),
    "nv_gpu_utilization": Series("gauge", frozenset({"gpu_uuid"})),
    "nv_gpu_memory_total_bytes": Series("gauge", frozenset({"gpu_uuid"})),
    "nv_gpu_memory_used_bytes": Series("gauge", frozenset({"gpu_uuid"})),
    "nv_trt_llm_request_metrics": Series("gauge", _TRITON_INFERENCE | {"request_type"}),
    "nv_trt_llm_kv_cache_block_metrics": Series("gauge", _TRITON_INFERENCE | {"kv_cache_block_type"}),
    "nv_trt_llm_inflight_batcher_metrics": Series("gauge", _TRITON_INFERENCE | {"inflight_batcher_specific_metric"}),
    # Prometheus's own: whether a target answered its last scrape.
    "up": Series("gauge", frozenset()),
}

_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_TOKEN = re.compile(r"(?<![\w.:$])(?P<name>[A-Za-z_:][\w:]*)\s*(?P<matchers>\{[^}]*\})?\s*(?P<call>\()?")
_MATCHER = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)\s*\"")
_CUMULATIVE_ONLY = re.compile(r"\b(?:rate|irate|increase)\s*\(\s*([A-Za-z_:][\w:]*)")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan"})
_PAIRS = {")": "(", "]": "[", "}": "{"}


@dataclass(frozen=True)
class Selector:
    name: str
    labels: frozenset[str]


def selectors(expr: str) -> list[Selector]:
    """The series an expression selects, with the label names of their matchers."""
    text = _GROUPING.sub(" ", _RANGE.sub(" ", expr))
    found = []
    for match in _TOKEN.finditer(text):
        if match["call"] and not match["matchers"] or match["name"] in _KEYWORDS:
            continue  # a function or aggregation, or an operator
        found.append(Selector(match["name"], frozenset(_MATCHER.findall(match["matchers"] or ""))))
    return found


def grouping_labels(expr: str) -> set[str]:
    """Label names in `by (...)`, `without (...)`, `on (...)` and the like."""
    return {label.strip() for group in _GROUPING.findall(expr) for label in group.split(",") if label.strip()}


def _balanced(expr: str) -> bool:
    stack: list[str] = []
    for char in re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr):
        if char in "([{":
            stack.append(char)
        elif char in _PAIRS:
            if not stack or stack.pop() != _PAIRS[char]:
                return False
    return not stack


def problems(expr: str, catalogue: Mapping[str, Series]) -> list[str]:
    """What is wrong with `expr` against the series that exist; empty when nothing is."""
    if not _balanced(expr):
        return [f"unbalanced brackets in {expr!r}"]
    found = []
    used = selectors(expr)
    if not used:
        found.append(f"selects no series: {expr!r}")
    available, labels_known = set(TARGET_LABELS), True
    for selector in used:
        series = catalogue.get(selector.name)
        if series is None:
            found.append(f"{selector.name} is not exposed by any process")
        elif series.labels is None:
            labels_known = False
        else:
            available |= series.labels
            unknown = selector.labels - series.labels - TARGET_LABELS
            if unknown:
                found.append(f"{selector.name} has no label(s) {sorted(unknown)}; it has {sorted(series.labels)}")
    missing = grouping_labels(expr) - available
    if labels_known and missing:
        found.append(f"grouping by label(s) {sorted(missing)} that no selected series has: {expr!r}")
    for name in _CUMULATIVE_ONLY.findall(expr):
        if name in catalogue and not catalogue[name].cumulative:
            found.append(f"rate()/increase() of {name}, a gauge")
    if "histogram_quantile" in expr and not any(s.name.endswith("_bucket") for s in used):
        found.append(f"histogram_quantile without a _bucket series: {expr!r}")
    return found
