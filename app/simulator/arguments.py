"""The flags of `wxstream simulate`, apart from the command so that building the CLI's
parser imports nothing heavy."""

from __future__ import annotations

import argparse

__all__ = ("add_arguments",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="where the API listens (default: loopback)")
    parser.add_argument("--port", type=int, help="API port (default: WXSTREAM_SIMULATOR_PORT, 8081; 0: a free one)")
    parser.add_argument("--ingress", help="ingress base URL (default: the running stack's, else the settings')")
    parser.add_argument("--rate", type=float, help="messages per second to send to the ingress (default: none)")
    parser.add_argument("--users", type=int, default=10, help="simulated users per account (default: 10)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of traffic (default: 10)")
    parser.add_argument(
        "--mix", default="text", help="kinds and weights, e.g. text=8,voice=1,subscribe=1,click=1 (default: text)"
    )
    parser.add_argument("--account", action="append", default=[], help="send as this account only; repeatable")
    parser.add_argument("--uncertified", action="append", default=[], help="account without the customer-service API")
    parser.add_argument("--token-lifetime", type=float, default=7200.0, help="access_token lifetime in seconds")
    parser.add_argument("--token-quota", type=int, default=2000, help="token fetches per account per day")
    parser.add_argument(
        "--fail", action="append", default=[], metavar="ENDPOINT:ERRCODE:PROBABILITY",
        help="random failures of token, stable_token, custom_send or typing; repeatable",
    )
    parser.add_argument(
        "--fail-next", action="append", default=[], metavar="ENDPOINT:ERRCODE", help="fail the next request; repeatable"
    )
    parser.add_argument(
        "--break-next", action="append", default=[], metavar="ENDPOINT:FAULT",
        help="break the next request's HTTP exchange: http_502 (before any effect), not_json or drop (after it); repeatable",
    )
    parser.add_argument("--latency", action="append", default=[], metavar="ENDPOINT:SECONDS", help="delay every answer")
    parser.add_argument("--linger", type=float, default=5.0, help="seconds to keep serving after the traffic")
    parser.add_argument("--seed", type=int, default=0, help="seed of users, texts and random failures")
