"""Prometheus scrapes every replica of every process that has metrics, where it serves
them; the alert rules use series and labels that exist, and each is explained in
docs/operations.md."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.unit.deploy.compose import ROOT, load_compose
from tests.unit.deploy.metrics import EXTERNAL_SERIES, problems, selectors, wxstream_series

PROJECT = load_compose()
CATALOGUE = {**wxstream_series(), **EXTERNAL_SERIES}
CONFIG_PATH = PROJECT.host_path("prometheus", PROJECT.flag("prometheus", "--config.file"))
CONFIG = yaml.safe_load(CONFIG_PATH.read_text(encoding="utf-8"))
# Where each scraped service serves /metrics.
METRICS_PORTS = {
    "ingress": PROJECT.settings("ingress").ingress_port,
    "worker": PROJECT.settings("worker").web_port,
    "triton": int(PROJECT.flag("triton", "--metrics-port")),
}


def _rule_files() -> list[Path]:
    return [PROJECT.host_path("prometheus", path) for path in CONFIG["rule_files"]]


RULES = [rule for path in _rule_files() for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def test_the_config_and_rule_files_are_mounted_from_the_repository():
    assert CONFIG_PATH == ROOT / "deploy" / "prometheus" / "prometheus.yml"
    assert _rule_files() == [ROOT / "deploy" / "prometheus" / "alerts.yml"]


def test_every_replica_of_every_process_with_metrics_is_scraped_on_its_port():
    scraped = {}
    for job in CONFIG["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"
        (discovery,) = job["dns_sd_configs"]  # one address per replica, from Docker's DNS
        assert discovery["type"] == "A"
        for service in discovery["names"]:
            scraped[service] = discovery["port"]
    assert scraped == METRICS_PORTS
    for service, port in scraped.items():
        assert port in PROJECT.ports(service), f"{service} does not offer port {port}"


def test_alert_rules_are_complete():
    names = [rule["alert"] for rule in RULES]
    assert len(names) == len(set(names)), "alert names must be unique"
    for rule in RULES:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule["alert"])
def test_alert_expressions_use_series_and_labels_that_exist(rule):
    assert problems(rule["expr"], CATALOGUE) == []


def test_alerts_cover_errors_latency_lag_breakers_dead_letters_and_the_spool():
    used = {selector.name for rule in RULES for selector in selectors(rule["expr"])}
    assert {
        "wxstream_ingress_requests_total",
        "wxstream_reply_latency_seconds_bucket",
        "wxstream_consumer_lag",
        "wxstream_model_breaker_state",
        "wxstream_dead_letters_total",
        "wxstream_ingress_spool_depth",
    } <= used


def test_every_alert_is_explained_in_the_operations_guide():
    guide = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    missing = [rule["alert"] for rule in RULES if f"`{rule['alert']}`" not in guide]
    assert missing == [], "add them to docs/operations.md, Alerts"
