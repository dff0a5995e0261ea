"""The baselines of bench.ingress: a bare aiohttp server that reads a callback's body and
answers `success`, with nothing else behind it; with `--kafka`, the same server that also
produces the body to the broker (acks=all) and waits for the acknowledgement first.

Both run the way the ingress runs (`web.run_app` on a uvloop event loop, SO_REUSEPORT,
access_log=None). The bare server is the goals' baseline: the difference to it is all the
ingress does. The producing server is the floor of a durable ingress on aiohttp: each
callback's body written, keyed by the query's openid, through the ingress's own write path
(`RecordBatcher` over `BrokerLink`: acks=all, linger 0, `--one-record-batches` as with the
embedded broker) and no verifying, decrypting, parsing, metrics or second record; the
difference to it is what the ingress's own work costs.

    python -m bench.bare_server --port 8081 [--kafka 127.0.0.1:9092 --topic bench.floor.v1]
"""

from __future__ import annotations

import argparse
from typing import AsyncIterator

import uvloop
from aiohttp import web

from app.ingress.batcher import RecordBatcher
from app.ingress.broker_link import BrokerLink
from app.ingress.partitioner import CachedPartitioner
from app.record_batches import batch_builders
from bench import description

TIMEOUT_S = 5.0
WRITER = web.AppKey("writer", RecordBatcher)
TOPIC = web.AppKey("topic", str)


async def callback(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(text="success")


async def produced_callback(request: web.Request) -> web.Response:
    body = await request.read()
    key = request.query.get("openid", "").encode("utf-8")
    await request.app[WRITER].send(request.app[TOPIC], key, body)
    return web.Response(text="success")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(kafka: str | None = None, topic: str = "", one_record_batches: bool = False) -> web.Application:
    app = web.Application()
    app.router.add_post("/wechat/{account}", callback if kafka is None else produced_callback)
    app.router.add_get("/healthz", healthz)
    if kafka is not None:
        app[TOPIC] = topic

        async def writer(app: web.Application) -> AsyncIterator[None]:
            link = BrokerLink(kafka, "bench-floor", TIMEOUT_S)
            await link.start()
            app[WRITER] = RecordBatcher(link, batch_builders(one_record_batches), CachedPartitioner(), TIMEOUT_S)
            yield
            await app[WRITER].close()
            await link.close()

        app.cleanup_ctx.append(writer)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_server", description=description(__doc__))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--kafka", metavar="HOST:PORT", help="produce each body to this broker before answering")
    parser.add_argument("--topic", default="bench.floor.v1", help="topic of --kafka (default bench.floor.v1)")
    parser.add_argument("--one-record-batches", action="store_true", help="one record per batch (embedded broker)")
    args = parser.parse_args(argv)
    web.run_app(
        create_app(args.kafka, args.topic, args.one_record_batches),
        host=args.host,
        port=args.port,
        reuse_port=True,
        access_log=None,
        print=lambda *_: print(f"bare server listening on http://{args.host}:{args.port}", flush=True),
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
