"""The baseline of bench.pipeline: a bare Faust app that forwards every record unchanged.

One agent reads a topic as raw bytes (key and value) and sends each record, as it came,
to another topic; the producer's partitioner puts it on the partition of its key, so a
record keeps its partition. No decoding, no table, nothing awaited but the send itself.
Everything else is the wxstream worker's configuration (app/worker.py), built from the
same `WXSTREAM_*` settings: broker transport and fetch wait, partitions, RocksDB store,
producer batch size (one record per batch with the embedded broker), linger, acks=all,
session timeout, heartbeat, offset reset (a change there belongs here too). It runs until
SIGTERM/SIGINT, as the worker does.

With `--tables N` the agent also counts each record's key in N Faust tables (RocksDB, with
a changelog topic each) before it forwards the record: the least any Faust agent pays per
event to keep N pieces of state per user, as the pipeline keeps dedupe's seen keys, the
user's rate window and the session.

    WXSTREAM_KAFKA_URL=127.0.0.1:9092 python -m bench.passthrough --sink bench.passthrough.v1 [--tables 3]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import faust

from app.faust_app import App
from app.worker import kafka_options
from app.settings import Settings
from app.topics import RAW_EVENTS
from bench import description

__all__ = ("APP_ID", "SINK", "create_app", "main")

APP_ID = "wxstream-bench-passthrough"
SINK = "bench.passthrough.v1"


def create_app(settings: Settings, source: str, sink: str, app_id: str = APP_ID, tables: int = 0) -> faust.App:
    if not settings.kafka_url:
        raise ValueError("the pass-through needs WXSTREAM_KAFKA_URL")
    app = App(
        app_id,
        store="rocksdb://",
        datadir=str(settings.data_dir / "passthrough"),
        web_enabled=False,
        **kafka_options(settings),
    )
    inbound = app.topic(source, key_serializer="raw", value_serializer="raw", partitions=settings.partitions)
    outbound = app.topic(sink, key_serializer="raw", value_serializer="raw", partitions=settings.partitions)
    counts = [app.Table(f"bench.state-{i}", default=int, partitions=settings.partitions) for i in range(tables)]

    @app.agent(inbound, name="bench.passthrough")
    async def forward(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            if counts:
                user = event.key.decode("utf-8")
                for table in counts:
                    table[user] += 1
            await outbound.send(key=event.key, value=event.value)

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.passthrough", description=description(__doc__))
    parser.add_argument("--source", default=RAW_EVENTS.name, help=f"topic to read (default {RAW_EVENTS.name})")
    parser.add_argument("--sink", default=SINK, help=f"topic to write (default {SINK})")
    parser.add_argument("--app-id", default=APP_ID, help=f"Faust app id, i.e. consumer group (default {APP_ID})")
    parser.add_argument("--kafka-url", help="broker host:port (default: WXSTREAM_KAFKA_URL)")
    parser.add_argument("--data-dir", type=Path, help="RocksDB and other local state (default: WXSTREAM_DATA_DIR)")
    parser.add_argument(
        "--tables", type=int, default=0, help="Faust tables each record's key is counted in first (default 0)"
    )
    args = parser.parse_args(argv)
    if args.tables < 0:
        parser.error("--tables must be >= 0")
    settings = Settings.from_env()
    if args.kafka_url:
        settings = replace(settings, kafka_url=args.kafka_url)
    if args.data_dir:
        settings = replace(settings, data_dir=args.data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, args.source, args.sink, args.app_id, args.tables)
    faust.Worker(app, loglevel=settings.log_level.upper(), quiet=True).execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main())
