"""The baselines of bench.ingress: a bare aiohttp server that reads a callback's body and
answers `success`, with nothing else behind it; with `--kafka`, the same server that also
produces the body to the broker (acks=all) and waits for the acknowledgement first.

Both run the way the ingress runs (`web.run_app` on a uvloop event loop, SO_REUSEPORT,
access_log=None). The bare server is the goals' baseline: the difference to it is all the
ingress does. The producing server is the floor of any durable ingress built on aiohttp
and aiokafka: one `send_and_wait` per callback, keyed by the query's openid, with the
ingress's producer settings (acks=all, linger 0, `--one-record-batches` as with the
embedded broker) and no verifying, decrypting, parsing, metrics or second record; the
difference to it is what the ingress's own work costs.

    python -m bench.bare_server --port 8081 [--kafka 127.0.0.1:9092 --topic bench.floor.v1]
"""

from __future__ import annotations

import argparse
from typing import AsyncIterator

import uvloop
from aiohttp import web
from aiokafka import AIOKafkaProducer

from app.record_batches import pack_one_record_batches

PRODUCER = web.AppKey("producer", AIOKafkaProducer)
TOPIC = web.AppKey("topic", str)


async def callback(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(text="success")


async def produced_callback(request: web.Request) -> web.Response:
    body = await request.read()
    key = request.query.get("openid", "").encode("utf-8")
    await request.app[PRODUCER].send_and_wait(request.app[TOPIC], body, key=key)
    return web.Response(text="success")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(kafka: str | None = None, topic: str = "", one_record_batches: bool = False) -> web.Application:
    app = web.Application()
    app.router.add_post("/wechat/{account}", callback if kafka is None else produced_callback)
    app.router.add_get("/healthz", healthz)
    if kafka is not None:
        app[TOPIC] = topic

        async def producer(app: web.Application) -> AsyncIterator[None]:
            app[PRODUCER] = AIOKafkaProducer(bootstrap_servers=kafka, acks="all", enable_idempotence=False)
            if one_record_batches:
                pack_one_record_batches(app[PRODUCER])
            await app[PRODUCER].start()
            yield
            await app[PRODUCER].stop()

        app.cleanup_ctx.append(producer)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_server", description=__doc__.split("\n")[0])
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
