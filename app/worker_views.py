"""wxstream's pages on the worker's Faust web server, beside Faust's own.

`/wxstream/ready` (events flow), `/metrics` (Prometheus), and views of users' data, such
as `/wxstream/session/{account}/{openid}`, which answer only when WXSTREAM_ADMIN_TOKEN is
set and the request carries it as a bearer token.
"""

from __future__ import annotations

import hmac

import faust
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from agents.metrics import AgentMetrics
from app.settings import Settings

__all__ = ("READY_PATH", "install_views")

READY_PATH = "/wxstream/ready"


def _authorised(request: web.Request, token: str | None) -> bool:
    if not token:
        return False
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))


def install_views(app: faust.App, settings: Settings, metrics: AgentMetrics, sessions: faust.Table) -> None:
    @app.page(READY_PATH)
    async def ready(self, request: web.Request) -> web.Response:
        """200 once tables are recovered and no rebalance is under way."""
        flowing = app.tables.recovery.completed.is_set() and not app.rebalancing
        return self.json({"ready": flowing}, status=200 if flowing else 503)

    @app.page("/metrics")
    async def prometheus(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/wxstream/session/{account}/{openid}")
    async def session(self, request: web.Request, account: str, openid: str) -> web.Response:
        """One user's conversation as stored (after a restart: as restored)."""
        if not _authorised(request, settings.admin_token):
            return self.json({"error": "forbidden: set WXSTREAM_ADMIN_TOKEN and send it as a bearer token"}, status=403)
        stored = sessions.get(f"{account}:{openid}")
        if stored is None:
            return self.json({"error": "no session"}, status=404)
        return self.json(stored.asdict())
