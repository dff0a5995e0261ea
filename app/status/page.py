"""The status snapshot as one small HTML page: no script, no external asset, refreshed by
the browser every few seconds (pure)."""

from __future__ import annotations

import time
from html import escape
from typing import Iterable, Sequence

from app.status.collect import Count, StatusSnapshot

__all__ = ("REFRESH_S", "render_page")

REFRESH_S = 5

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2430;background:#f6f7f9}
h1{font-size:20px;margin:0 0 4px}h2{font-size:15px;margin:0 0 8px}
.meta{color:#5b6472;margin-bottom:16px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:16px}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:12px 14px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:3px 6px;border-bottom:1px solid #eef0f3}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;font-size:12px}
.ok,.closed{background:#dcf5e3;color:#146c2e}.warn,.half_open{background:#fff1c7;color:#7a5300}
.bad,.open{background:#fde0df;color:#a61b15}.empty{color:#8a93a0;font-style:italic}
"""


def _table(table_id: str, headers: Sequence[str], rows: Iterable[Sequence[str]], numeric_from: int) -> str:
    """A table whose columns from `numeric_from` on are right-aligned numbers; cells are
    already escaped HTML."""
    rows = list(rows)
    if not rows:
        return f'<p class="empty" id="{table_id}">none yet</p>'
    head = "".join(f'<th{" class=n" if i >= numeric_from else ""}>{h}</th>' for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f'<td{" class=n" if i >= numeric_from else ""}>{c}</td>' for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _section(title: str, content: str) -> str:
    return f"<section><h2>{escape(title)}</h2>{content}</section>"


def _counts(table_id: str, label: str, counts: Sequence[Count]) -> str:
    return _table(table_id, (label, "count"), ((escape(c.name), f"{c.count:,}") for c in counts), 1)


def _badge(css: str, text: str) -> str:
    return f'<span class="badge {css}">{escape(text)}</span>'


def _spool(snapshot: StatusSnapshot) -> str:
    ingress = snapshot.ingress
    if ingress is None:
        return '<p class="empty" id="spool">not asked</p>'
    depth = "did not answer" if ingress.spool_depth is None else f"{ingress.spool_depth:,}"
    return f'<p id="spool">spool depth <b>{depth}</b> at {escape(ingress.url)}/metrics</p>'


def render_page(snapshot: StatusSnapshot) -> str:
    taken = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(snapshot.taken_at))
    ready = _badge("ok", "ready") if snapshot.ready else _badge("bad", "not ready")
    agents = _table(
        "agents",
        ("agent", "events", "events/s", "mean ms"),
        (
            (
                escape(a.name),
                f"{a.events:,}",
                f"{a.events_per_second:.1f}",
                "–" if a.mean_event_seconds is None else f"{a.mean_event_seconds * 1000:.1f}",
            )
            for a in snapshot.agents
        ),
        1,
    )
    lag = _table(
        "lag",
        ("topic", "partition", "lag"),
        ((escape(p.topic), str(p.partition), f"{p.lag:,}") for p in snapshot.lag),
        1,
    )
    tables = _table("tables", ("table", "keys"), ((escape(t.name), f"{t.keys:,}") for t in snapshot.tables), 1)
    breakers = _table(
        "breakers",
        ("model", "breaker"),
        ((escape(b.model), _badge(b.state, b.state.replace("_", "-"))) for b in snapshot.breakers),
        2,
    )
    sections = (
        _section("Agents", agents),
        _section(f"Consumer lag (total {snapshot.total_lag:,})", lag),
        _section("Tables", tables),
        _section("Model circuit breakers", breakers),
        _section("Replies by source", _counts("replies", "source", snapshot.replies_by_source)),
        _section("Drops by reason", _counts("drops", "reason", snapshot.drops_by_reason)),
        _section("Dead letters by reason", _counts("dead-letters", "reason", snapshot.dead_letters_by_reason)),
        _section("Ingress", _spool(snapshot)),
    )
    return (
        "<!doctype html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="{REFRESH_S}">'
        f"<title>wxstream worker status</title><style>{_STYLE}</style></head><body>"
        f"<h1>wxstream worker {ready}</h1>"
        f'<p class="meta">{escape(snapshot.worker)} · {taken} · refreshes every {REFRESH_S} s · '
        f'<a href="status.json">JSON</a> · <a href="../metrics">metrics</a></p>'
        f'<div class="grid">{"".join(sections)}</div></body></html>\n'
    )
