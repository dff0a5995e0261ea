"""wxstream's pages on the worker's Faust web server, beside Faust's own.

`/wxstream/ready` (events flow), `/metrics` (Prometheus), `/wxstream/status` and
`/wxstream/status.json` (counts only: agents, lag, tables, breakers, replies, drops, dead
letters), and views of users' data, such as `/wxstream/session/{account}/{openid}`, which
answer only when WXSTREAM_ADMIN_TOKEN is set and the request carries it as a bearer token.
"""

from __future__ import annotations

import hmac
import time

import faust
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from agents.metrics import AgentMetrics
from app.settings import Settings
from app.status.collect import StatusSnapshot, build_snapshot
from app.status.ingress import read_ingress_status
from app.status.page import render_page
from app.status.sensor import PrometheusSensor
from tables.sessions import Sessions

__all__ = ("READY_PATH", "STATUS_JSON_PATH", "STATUS_PATH", "install_views")

READY_PATH = "/wxstream/ready"
STATUS_PATH = "/wxstream/status"
STATUS_JSON_PATH = "/wxstream/status.json"


def _flowing(app: faust.App) -> bool:
    return app.tables.recovery.completed.is_set() and not app.rebalancing


def _authorised(request: web.Request, token: str | None) -> bool:
    if not token:
        return False
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))


def install_views(
    app: faust.App, settings: Settings, metrics: AgentMetrics, sessions: Sessions, sensor: PrometheusSensor
) -> None:
    async def snapshot() -> StatusSnapshot:
        return build_snapshot(
            metrics.registry.collect(),
            worker=settings.web_url,
            taken_at=time.time(),
            ready=_flowing(app),
            throughput=sensor.throughput.rates,
            ingress=await read_ingress_status(app.http_client, settings.ingress_url),
        )

    @app.page(READY_PATH)
    async def ready(self, request: web.Request) -> web.Response:
        """200 once tables are recovered and no rebalance is under way."""
        flowing = _flowing(app)
        return self.json({"ready": flowing}, status=200 if flowing else 503)

    @app.page("/metrics")
    async def prometheus(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page(STATUS_JSON_PATH)
    async def status_json(self, request: web.Request) -> web.Response:
        return self.json((await snapshot()).as_dict())

    @app.page(STATUS_PATH)
    async def status_page(self, request: web.Request) -> web.Response:
        return self.html(render_page(await snapshot()))

    @app.page("/wxstream/session/{account}/{openid}")
    async def session(self, request: web.Request, account: str, openid: str) -> web.Response:
        """One user's conversation as stored (after a restart: as restored)."""
        if not _authorised(request, settings.admin_token):
            return self.json({"error": "forbidden: set WXSTREAM_ADMIN_TOKEN and send it as a bearer token"}, status=403)
        stored = sessions.latest(f"{account}:{openid}", time.time())
        if stored is None:
            return self.json({"error": "no session"}, status=404)
        return self.json(stored.asdict())
