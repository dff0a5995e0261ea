"""The Faust worker: one app, its topics, tables and agents, wired from Settings."""

from __future__ import annotations

import socket
from typing import Mapping

import faust

from agents import conversation, dedupe, outbound
from agents.delivery import Acks
from agents.metrics import AgentMetrics
from app.accounts import Account, load_accounts
from app.clients.policy import RetryPolicy
from app.clients.triton import ModelClient
from app.faust_app import App
from app.faust_transport import broker_url
from app.outbound.api import WECHAT_API_URL, WeChatApi
from app.outbound.sender import Sender
from app.outbound.tokens import TokenCache
from app.settings import PRODUCER_BATCH_BYTES, Settings, SettingsError
from app.status.sensor import PrometheusSensor
from app.topics import Topics
from app.worker_views import install_views
from tables.answers import answer_cache_table
from tables.outbox import Outbox
from tables.ratelimits import RateTables
from tables.seen import seen_table
from tables.sessions import sessions_table
from tables.windowed import install_window_sweep

__all__ = ("advertised_host", "create_app", "kafka_options", "run_worker")

APP_ID = "wxstream"
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


def kafka_options(settings: Settings) -> dict[str, object]:
    """How a wxstream Faust app talks to Kafka: broker, partitions, producer batching (the
    embedded broker's workaround: one-record batches, packed by the transport up to the
    usual batch size per request), acks, group timing. Shared with the benchmarks'
    baseline so that both run with the same settings."""
    return {
        "broker": broker_url(settings.kafka_url, settings.kafka_fetch_max_wait_ms, settings.one_record_batches),
        "topic_partitions": settings.partitions,
        "producer_max_batch_size": PRODUCER_BATCH_BYTES,
        "producer_linger": settings.kafka_linger_ms / 1000,
        "producer_acks": -1,
        "broker_session_timeout": settings.kafka_session_timeout_s,
        "broker_heartbeat_interval": 1,
        "consumer_auto_offset_reset": "earliest",
    }


def advertised_host(bind: str) -> str:
    """The host other workers and Faust's /router/ views reach this worker at: the bind
    address, or this machine's name where that is a wildcard (each replica the same one
    otherwise, and Faust's views of who serves what would merge them)."""
    return socket.gethostname() if bind in WILDCARD_HOSTS else bind


def create_app(settings: Settings, accounts: Mapping[str, Account], *, store: str = "rocksdb://") -> faust.App:
    if not settings.kafka_url:
        raise SettingsError("the worker needs WXSTREAM_KAFKA_URL (`wxstream up` sets it for the embedded broker)")
    if not settings.triton_url:
        raise SettingsError("the worker needs WXSTREAM_TRITON_URL (`wxstream up` sets it for the embedded server)")
    app = App(
        APP_ID,
        store=store,
        datadir=str(settings.data_dir / "worker"),
        table_cleanup_interval=30.0,
        web_enabled=True,
        web_host=advertised_host(settings.web_host),
        web_port=settings.web_port,
        web_bind=settings.web_host,
        # Faust's /table/ views would serve any row, users' sessions included, to anyone.
        web_tables_enabled=False,
        **kafka_options(settings),
    )
    metrics = AgentMetrics()
    sensor = PrometheusSensor(app, metrics.registry)
    app.sensors.add(sensor)
    topics = Topics.declare(app, settings)
    sessions = sessions_table(app, settings)
    outbox = Outbox(app, settings)
    acks = Acks(app)
    conversations = conversation.Responder(
        acks,
        topics,
        conversation.Tables(
            rates=RateTables.declare(app, settings),
            sessions=sessions,
            answers=answer_cache_table(app, settings) if settings.answer_cache_ttl_s > 0 else None,
            mailboxes=outbox.mailboxes,
        ),
        accounts,
        settings,
        ModelClient.from_settings(settings, metrics.model),
        metrics,
    ).conversation()
    dedupe.install(app, topics, seen_table(app, settings), settings, metrics, conversations, acks)
    sender = wechat_sender(settings, metrics)
    outbound.install(app, outbound.Outbound(topics, outbox, accounts, settings, sender, metrics), acks)
    install_views(app, settings, metrics, sessions, sensor)
    install_window_sweep(app, settings.window_sweep_interval_s)
    return app


def wechat_sender(settings: Settings, metrics: AgentMetrics) -> Sender:
    """The customer-service API client: WeChat's API, or the simulator's in development."""
    api = WeChatApi(settings.wechat_api_url or WECHAT_API_URL, settings.outbound_request_timeout_s, metrics.outbound)
    retry = RetryPolicy(settings.outbound_retries, settings.outbound_retry_backoff_s, settings.outbound_retry_backoff_max_s)
    return Sender(api, TokenCache(api), retry)


def run_worker(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT; Faust handles the signals and a clean shutdown."""
    app = create_app(settings, load_accounts(settings))
    worker = faust.Worker(app, loglevel=settings.log_level.upper(), quiet=True)
    worker.execute_from_commandline()
