"""Grafana finds its datasource and dashboards where they are mounted, and every panel of
the dashboard queries series and labels that exist."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
import yaml

from tests.unit.deploy.compose import ROOT, load_compose
from tests.unit.deploy.metrics import EXTERNAL_SERIES, problems, selectors, wxstream_series

PROJECT = load_compose()
CATALOGUE = {**wxstream_series(), **EXTERNAL_SERIES}
PROVISIONING = PROJECT.host_path("grafana", "/etc/grafana/provisioning")
(DATASOURCE,) = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())["datasources"]
(PROVIDER,) = yaml.safe_load((PROVISIONING / "dashboards" / "wxstream.yml").read_text())["providers"]
DASHBOARD_DIR = PROJECT.host_path("grafana", PROVIDER["options"]["path"])
DASHBOARD = json.loads((DASHBOARD_DIR / "wxstream.json").read_text(encoding="utf-8"))
PANELS = [panel for panel in DASHBOARD["panels"] if panel["type"] != "row"]
TARGETS = [(panel["title"], target) for panel in PANELS for target in panel["targets"]]


def test_provisioning_is_mounted_from_the_repository():
    assert PROVISIONING == ROOT / "deploy" / "grafana" / "provisioning"
    assert DASHBOARD_DIR == ROOT / "deploy" / "grafana" / "dashboards"
    home = PROJECT.environment("grafana")["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert PROJECT.host_path("grafana", home) == DASHBOARD_DIR / "wxstream.json"


def test_the_datasource_is_the_compose_prometheus():
    url = urlsplit(DATASOURCE["url"])
    assert DATASOURCE["type"] == "prometheus"
    assert url.hostname in PROJECT.services and url.port in PROJECT.ports(url.hostname)


def test_every_panel_and_query_uses_the_provisioned_datasource():
    for panel in PANELS:
        assert panel["datasource"]["uid"] == DATASOURCE["uid"], panel["title"]
        assert [t["datasource"]["uid"] for t in panel["targets"]] == [DATASOURCE["uid"]] * len(panel["targets"])


def test_panels_have_unique_ids_and_do_not_overlap():
    ids = [panel["id"] for panel in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in DASHBOARD["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_queries_have_unique_ref_ids_per_panel():
    for panel in PANELS:
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]


@pytest.mark.parametrize("title, target", TARGETS, ids=[f"{title}/{t['refId']}" for title, t in TARGETS])
def test_queries_use_series_and_labels_that_exist(title, target):
    assert problems(target["expr"], CATALOGUE) == []


def test_the_dashboard_shows_every_stage_end_to_end():
    used = {selector.name for _, target in TARGETS for selector in selectors(target["expr"])}
    assert {
        "wxstream_ingress_requests_total",
        "wxstream_ingress_request_duration_seconds_bucket",
        "wxstream_ingress_produce_duration_seconds_bucket",
        "wxstream_model_request_duration_seconds_bucket",
        "wxstream_reply_latency_seconds_bucket",
        "wxstream_consumer_lag",
        "wxstream_drops_total",
        "wxstream_dead_letters_total",
        "wxstream_model_breaker_state",
        "wxstream_ingress_spool_depth",
    } <= used
