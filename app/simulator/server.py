"""The simulator's HTTP server: WeChat's API plus `/_sim/`, on loopback.

`create_app` is the aiohttp app factory (tests wrap it in a TestServer); `ApiServer`
runs it on a port and is an async context manager for in-process use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from app.simulator.api import STATE, add_api_routes
from app.simulator.chat import add_chat_routes
from app.simulator.control import add_control_routes
from app.simulator.state import SimState

__all__ = ("create_app", "ApiServer")


def create_app(state: SimState, ingress_url: str | None = None) -> web.Application:
    """With `ingress_url`, users can also write to the accounts (`POST /_sim/send`)."""
    app = web.Application()
    app[STATE] = state
    add_api_routes(app)
    add_control_routes(app)
    if ingress_url:
        add_chat_routes(app, ingress_url)
    return app


@dataclass
class ApiServer:
    state: SimState
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port
    ingress_url: str | None = None  # where `POST /_sim/send` delivers users' messages
    _runner: web.AppRunner | None = field(default=None, init=False, repr=False)
    _bound_port: int | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        """Base URL, as `wechat_api_url` expects it (no trailing slash)."""
        if self._bound_port is None:
            raise RuntimeError("the server is not running")
        return f"http://{self.host}:{self._bound_port}"

    async def start(self) -> str:
        runner = web.AppRunner(create_app(self.state, self.ingress_url), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        self._bound_port = runner.addresses[0][1]
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = self._bound_port = None

    async def __aenter__(self) -> "ApiServer":
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
