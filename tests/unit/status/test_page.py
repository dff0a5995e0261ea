"""The status page: every section, escaped, self-contained, refreshing."""

from __future__ import annotations

import re
from dataclasses import replace

from app.status.collect import AgentStatus, IngressStatus, build_snapshot
from app.status.page import REFRESH_S, render_page
from tests.unit.status.conftest import RAW


def snapshot(busy_worker, **changes):
    agents, _ = busy_worker
    built = build_snapshot(
        agents.registry.collect(),
        worker="http://127.0.0.1:6066",
        taken_at=1_714_000_000.0,
        ready=True,
        throughput={"wxstream.dedupe": 1.5},
        ingress=IngressStatus("http://127.0.0.1:8080", 3),
    )
    return replace(built, **changes)


def element(page: str, element_id: str) -> str:
    match = re.search(rf'<(table|p) id="{element_id}".*?</\1>', page, re.S)
    assert match, f"no #{element_id}"
    return match.group(0)


def test_every_section_shows_its_rows(busy_worker):
    page = render_page(snapshot(busy_worker))
    assert "wxstream.dedupe" in element(page, "agents") and "1.5" in element(page, "agents")
    assert "20.0" in element(page, "agents")  # mean ms of the conversation agent
    assert RAW in element(page, "lag")
    assert "Consumer lag (total 6)" in page
    assert "sessions-v1" in element(page, "tables")
    breakers = element(page, "breakers")
    assert 'class="badge closed"' in breakers and 'class="badge open"' in breakers
    assert "model" in element(page, "replies") and "18" in element(page, "replies")
    assert "rate_limited" in element(page, "drops")
    assert "undecodable" in element(page, "dead-letters")
    assert "<b>3</b>" in element(page, "spool")
    assert "2024-04-24 23:06:40 UTC" in page


def test_it_refreshes_itself_and_loads_nothing_else(busy_worker):
    page = render_page(snapshot(busy_worker))
    assert f'<meta http-equiv="refresh" content="{REFRESH_S}">' in page
    assert "<script" not in page and "<link" not in page and "<img" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page)


def test_empty_sections_and_an_unready_worker(busy_worker):
    page = render_page(snapshot(busy_worker, ready=False, agents=(), lag=(), ingress=IngressStatus("http://x", None)))
    assert "not ready" in page
    assert '<p class="empty" id="agents">none yet</p>' in page
    assert "did not answer" in element(page, "spool")


def test_names_are_escaped(busy_worker):
    hostile = AgentStatus("<script>alert(1)</script>", 1, 0.0, None)
    page = render_page(snapshot(busy_worker, agents=(hostile,)))
    assert "<script>" not in page and "&lt;script&gt;" in page
