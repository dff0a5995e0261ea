"""The baseline of bench.ingress: a bare aiohttp server that reads a callback's body and
answers `success`, with nothing else behind it.

It runs the way the ingress runs (`web.run_app` on a uvloop event loop, SO_REUSEPORT,
access_log=None), so the difference between the two is the ingress's own work: verify,
decrypt, parse, produce with acks=all and wait for the broker, metrics.

    python -m bench.bare_server --port 8081
"""

from __future__ import annotations

import argparse

import uvloop
from aiohttp import web


async def callback(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(text="success")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/wechat/{account}", callback)
    app.router.add_get("/healthz", healthz)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_server", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    web.run_app(
        create_app(),
        host=args.host,
        port=args.port,
        reuse_port=True,
        access_log=None,
        print=lambda *_: print(f"bare server listening on http://{args.host}:{args.port}", flush=True),
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
