"""The ingress application factory and its runner."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator, Mapping

from aiohttp import web

from app.accounts import Account
from app.ingress import handlers
from app.ingress.publisher import RawEventPublisher
from app.kafka_admin import ensure_topics
from app.settings import Settings

__all__ = ("create_web_app", "run_ingress")

log = logging.getLogger("wxstream.ingress")


def create_web_app(settings: Settings, accounts: Mapping[str, Account]) -> web.Application:
    if not settings.kafka_url:
        raise ValueError("the ingress needs WXSTREAM_KAFKA_URL (`wxstream up` sets it for the embedded broker)")
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[handlers.SETTINGS] = settings
    app[handlers.ACCOUNTS] = accounts
    app.router.add_get("/wechat/{account}", handlers.verify_url)
    app.router.add_post("/wechat/{account}", handlers.callback)
    app.router.add_get("/healthz", handlers.healthz)

    @asynccontextmanager
    async def kafka(app: web.Application) -> AsyncIterator[None]:
        await asyncio.to_thread(ensure_topics, settings, settings.kafka_url)
        publisher = RawEventPublisher(settings, settings.kafka_url)
        await publisher.start()
        app[handlers.PUBLISHER] = publisher
        log.info("ingress producing to %s", settings.kafka_url)
        try:
            yield
        finally:
            await publisher.stop()

    app.cleanup_ctx.append(kafka)
    return app


def run_ingress(settings: Settings, accounts: Mapping[str, Account]) -> None:
    """Serve until SIGTERM/SIGINT, then finish in-flight requests and flush the producer."""
    web.run_app(
        create_web_app(settings, accounts),
        host=settings.ingress_host,
        port=settings.ingress_port,
        access_log=None,
        print=lambda *_: log.info("ingress listening on %s", settings.ingress_url),
        shutdown_timeout=10.0,
    )
