"""The ingress application factory and its runner."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import logging
import time
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable, Mapping

import uvloop
from aiohttp import web

from app.accounts import Account
from app.ingress import handlers
from app.ingress.metrics import IngressMetrics
from app.ingress.passive import ReplyWaiter
from app.ingress.publisher import RawEventPublisher
from app.ingress.rejections import RejectionLog
from app.ingress.spool import Spool, SpoolCorruptError, set_aside
from app.kafka_admin import ensure_topics
from app.settings import Settings, SettingsError
from app.topics import RAW_EVENTS

__all__ = ("create_web_app", "damaged_spools_dir", "run_ingress", "spool_dir", "spools_set_aside")

log = logging.getLogger("wxstream.ingress")

CONNECT_RETRY_S = 1.0  # first pause before trying the broker again at start-up, doubling
CONNECT_RETRY_MAX_S = 30.0


class SpoolInUseError(RuntimeError):
    """Two ingress processes were given the same spool directory."""


def spool_dir(settings: Settings) -> Path:
    return settings.data_dir / "spool" / f"ingress-{settings.ingress_id}"


def damaged_spools_dir(settings: Settings) -> Path:
    """Where spools too damaged to open wait for `wxstream salvage-spool`."""
    return settings.data_dir / "spool" / "damaged"


def spools_set_aside(settings: Settings) -> list[Path]:
    """The damaged spools of every ingress of this data dir still waiting to be salvaged."""
    damaged = damaged_spools_dir(settings)
    return sorted(path for path in damaged.iterdir() if path.is_dir()) if damaged.is_dir() else []


def _own_spools_set_aside(settings: Settings) -> int:
    prefix = f"{spool_dir(settings).name}-"
    return sum(path.name.startswith(prefix) for path in spools_set_aside(settings))


@asynccontextmanager
async def _locked_spool(settings: Settings) -> AsyncIterator[Spool]:
    """The spool of this ingress, locked so that no second process can use it."""
    directory = spool_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SpoolInUseError(
                f"spool {directory} is used by another ingress; give each one its own WXSTREAM_INGRESS_ID"
            ) from None
        spool = await asyncio.to_thread(_open_or_set_aside, directory, damaged_spools_dir(settings))
        try:
            yield spool
        finally:
            spool.close()


def _open_or_set_aside(directory: Path, damaged: Path) -> Spool:
    """The spool in `directory`. One too damaged to open is set aside first, and an empty
    one started: the ingress takes WeChat's callbacks again at once, and the damaged spool
    waits for `wxstream salvage-spool`, which writes its intact records to the raw topic."""
    try:
        return Spool(directory)
    except SpoolCorruptError as exc:
        aside = damaged / f"{directory.name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        set_aside(directory, aside)
        log.error(
            "%s; the spool is set aside in %s and this ingress starts with an empty one. "
            "Run `wxstream salvage-spool` to write its intact records to %s",
            exc,
            aside,
            RAW_EVENTS.name,
        )
        return Spool(directory)


async def _connect(
    settings: Settings, bootstrap: str, publisher: RawEventPublisher, waiter: ReplyWaiter, started: AsyncExitStack
) -> None:
    """Create the topics, connect the publisher and start the reply follower, each tried
    again until the broker answers: an ingress started while the broker is away serves at
    once, and its callbacks go to the spool until then."""
    await _until_done("create the topics", bootstrap, lambda: asyncio.to_thread(ensure_topics, settings, bootstrap))
    await _until_done("connect the publisher", bootstrap, publisher.start)
    started.push_async_callback(publisher.stop)
    await _until_done("follow the replies", bootstrap, waiter.start)
    started.push_async_callback(waiter.stop)
    log.info("ingress producing to %s; %d events in spool %s", bootstrap, publisher.spooled, spool_dir(settings))


async def _until_done(what: str, bootstrap: str, step: Callable[[], Awaitable[None]]) -> None:
    pause = CONNECT_RETRY_S
    while True:
        try:
            return await step()
        except Exception as exc:
            log.warning("could not %s at %s (%s); callbacks go to the spool; trying again in %.0fs", what, bootstrap, exc, pause)
        await asyncio.sleep(pause)
        pause = min(pause * 2, CONNECT_RETRY_MAX_S)


def create_web_app(settings: Settings, accounts: Mapping[str, Account]) -> web.Application:
    if not settings.kafka_url:
        raise SettingsError("the ingress needs WXSTREAM_KAFKA_URL (`wxstream up` sets it for the embedded broker)")
    bootstrap = settings.kafka_url
    # The handler answers 413 (with metrics) from the Content-Length; aiohttp's limit,
    # which a chunked body meets while being read, is the same.
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[handlers.SETTINGS] = settings
    app[handlers.ACCOUNTS] = accounts
    app[handlers.METRICS] = metrics = IngressMetrics()
    app[handlers.REJECTIONS] = RejectionLog()
    app.router.add_get("/wechat/{account}", handlers.verify_url)
    app.router.add_post("/wechat/{account}", handlers.callback)
    app.router.add_route("*", "/wechat/{account}", handlers.wrong_method)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/readyz", handlers.readyz)
    app.router.add_get("/metrics", handlers.metrics)

    @asynccontextmanager
    async def kafka(app: web.Application) -> AsyncIterator[None]:
        async with _locked_spool(settings) as spool, AsyncExitStack() as started:
            publisher = RawEventPublisher(settings, bootstrap, spool, metrics)
            metrics.spool_damaged.set_function(
                lambda: _own_spools_set_aside(settings) + (publisher.spool_damage is not None)
            )
            waiter = ReplyWaiter(bootstrap, settings.kafka_fetch_max_wait_ms)
            app[handlers.PUBLISHER] = publisher
            app[handlers.WAITER] = waiter
            connecting = asyncio.create_task(_connect(settings, bootstrap, publisher, waiter, started))
            try:
                yield
            finally:
                connecting.cancel()  # then `started` stops what it started, the waiter first
                with contextlib.suppress(asyncio.CancelledError):
                    await connecting

    app.cleanup_ctx.append(kafka)
    return app


def run_ingress(settings: Settings, accounts: Mapping[str, Account]) -> None:
    """Serve until SIGTERM/SIGINT, then finish in-flight requests and wait for the
    broker to acknowledge what is in flight.

    The socket is opened with SO_REUSEPORT: several ingress processes (each with its own
    WXSTREAM_INGRESS_ID) can serve one port and the kernel spreads connections over them.
    The event loop is uvloop's: its transports, futures and timers are written in C, which
    takes a good share of the CPU every callback costs.
    """
    app = create_web_app(settings, accounts)
    # What is alive now (modules, Faust's and aiokafka's classes, the accounts) lives as
    # long as the process: keep it out of the collector's full passes, which otherwise
    # hold up every callback in flight, for over 200 ms on a busy machine.
    gc.collect()
    gc.freeze()
    web.run_app(
        app,
        loop=uvloop.new_event_loop(),
        host=settings.ingress_host,
        port=settings.ingress_port,
        reuse_port=True,
        access_log=None,
        print=lambda *_: log.info("ingress listening on %s", settings.ingress_url),
        shutdown_timeout=10.0,
    )
