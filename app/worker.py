"""The Faust worker: one app, its topics, tables and agents, wired from Settings."""

from __future__ import annotations

import faust

from agents import dedupe, replier
from app.clients.triton import ModelClient
from app.settings import Settings
from app.topics import Topics
from tables.seen import seen_table

__all__ = ("create_app", "run_worker")

APP_ID = "wxstream"


def create_app(settings: Settings) -> faust.App:
    if not settings.kafka_url:
        raise ValueError("the worker needs WXSTREAM_KAFKA_URL (`wxstream up` sets it for the embedded broker)")
    if not settings.triton_url:
        raise ValueError("the worker needs WXSTREAM_TRITON_URL (`wxstream up` sets it for the embedded server)")
    app = faust.App(
        APP_ID,
        broker=f"kafka://{settings.kafka_url}",
        store="rocksdb://",
        datadir=str(settings.data_dir / "worker"),
        topic_partitions=settings.partitions,
        producer_max_batch_size=settings.producer_max_batch_bytes,
        producer_linger=settings.kafka_linger_ms / 1000,
        producer_acks=-1,
        broker_session_timeout=settings.kafka_session_timeout_s,
        broker_heartbeat_interval=1,
        consumer_auto_offset_reset="earliest",
        web_enabled=True,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
    )
    topics = Topics.declare(app, settings)
    seen = seen_table(app, settings)
    dedupe.install(app, topics, seen)
    replier.install(app, topics, settings, ModelClient(settings.triton_url, settings.model_name, settings.model_timeout_s))
    return app


def run_worker(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT; Faust handles the signals and a clean shutdown."""
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=settings.log_level.upper(), quiet=True)
    worker.execute_from_commandline()
