"""The `wxstream` command: run the stack or one component, and the operator's tools.

Every command builds Settings once from `WXSTREAM_*` (flags override) and passes it down.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from app.accounts import AccountsError, load_accounts
from app.datatools.arguments import add_replay_arguments, add_tail_arguments, add_topics_arguments
from app.settings import Settings, SettingsError
from app.simulator.arguments import add_arguments as add_simulate_arguments

__all__ = ("main",)


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    for name in Settings.unknown_variables():
        print(f"wxstream: warning: {name} is not a setting; it is ignored", file=sys.stderr)
    if getattr(args, "data_dir", None):
        settings = replace(settings, data_dir=args.data_dir)
    return settings


def _logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM and SIGINT stop `up` the way Ctrl-C does: every component, in reverse
    order. SIGINT too, because a shell starts background jobs with it ignored."""
    raise KeyboardInterrupt


def cmd_up(args: argparse.Namespace) -> int:
    from app.embedded.process import ComponentError
    from app.stack import Stack

    settings = _settings(args)
    load_accounts(settings)  # fail before starting anything, and create the demo account
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    stack = Stack(settings)
    try:
        with stack:
            print("wxstream: try `.venv/bin/wxstream send hi` in another terminal; Ctrl-C stops everything.", flush=True)
            stack.watch()
    except KeyboardInterrupt:
        print("\nwxstream: stopped.")
        return 0
    except ComponentError as exc:
        print(f"wxstream: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from app.worker import run_worker

    run_worker(_settings(args))
    return 0


def cmd_ingress(args: argparse.Namespace) -> int:
    from app.ingress.server import run_ingress

    settings = _settings(args)
    _logging(settings)
    run_ingress(settings, load_accounts(settings))
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    from app.send import SendError, send_text

    settings = _settings(args)
    accounts = load_accounts(settings)
    name = args.account or next(iter(accounts))
    if name not in accounts:
        print(f"wxstream send: unknown account {name!r}; known: {', '.join(accounts)}", file=sys.stderr)
        return 2
    try:
        answer = asyncio.run(send_text(settings, accounts[name], args.openid, args.text, args.timeout))
    except SendError as exc:
        print(f"wxstream send: {exc}", file=sys.stderr)
        return 1
    print(answer.text)
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    from app.decode import decode_callback

    try:
        body = sys.stdin.buffer.read() if args.body == "-" else Path(args.body).read_bytes()
    except OSError as exc:
        print(f"wxstream decode: cannot read the body: {exc}", file=sys.stderr)
        return 2
    return decode_callback(
        token=args.token, appid=args.appid, aes_keys=args.aes_key, query=args.query, body=body, window_s=args.window
    )


def cmd_simulate(args: argparse.Namespace) -> int:
    from app.simulator.command import run_simulate

    settings = _settings(args)
    return run_simulate(settings, load_accounts(settings), args)


def cmd_config(args: argparse.Namespace) -> int:
    """Print the effective configuration as WXSTREAM_* assignments, secrets masked."""
    settings = _settings(args)
    for name, value in sorted(settings.to_env(mask_secrets=True).items()):
        print(f"{name}={value}")
    for account in load_accounts(settings).values():
        print(f"# account {account.name}: appid={account.appid} mode={account.mode} keys={len(account.aes_keys)}")
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    from app.datatools.topics import run_topics

    return run_topics(_settings(args), args)


def cmd_tail(args: argparse.Namespace) -> int:
    from app.datatools.tail import run_tail

    return run_tail(_settings(args), args)


def cmd_replay(args: argparse.Namespace) -> int:
    from app.datatools.replay import run_replay

    return run_replay(_settings(args), args)


def cmd_salvage_spool(args: argparse.Namespace) -> int:
    from app.ingress.salvage import run_salvage

    return run_salvage(_settings(args), args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wxstream", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="overrides WXSTREAM_DATA_DIR")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, *, help: str) -> argparse.ArgumentParser:
        """A command whose own --help opens with what the list says of it."""
        return subparsers.add_parser(name, help=help, description=help)

    command("up", help="start broker, tritonserver, worker and ingress; Ctrl-C stops all").set_defaults(
        run=cmd_up
    )
    command("worker", help="run the Faust worker (agents and tables)").set_defaults(run=cmd_worker)
    command("ingress", help="run the HTTP ingress WeChat calls").set_defaults(run=cmd_ingress)

    send = command("send", help="act as WeChat: send a text message and print the reply")
    send.add_argument("text", help="the message, as the user would type it")
    send.add_argument("--account", help="account name (default: the first in the accounts file)")
    send.add_argument("--openid", default="o_wxstream_cli_user", help="the sending user's openid")
    send.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the reply")
    send.set_defaults(run=cmd_send)

    simulate = command(
        "simulate", help="play WeChat on loopback: its API for the outbound sender, and traffic at the ingress"
    )
    add_simulate_arguments(simulate)
    simulate.set_defaults(run=cmd_simulate)

    command("config", help="print the effective configuration (secrets masked)").set_defaults(
        run=cmd_config
    )

    decode = command(
        "decode", help="verify and decode one callback as the ingress would; print JSON or the reason it is rejected"
    )
    decode.add_argument("--token", required=True, help="the account's Token")
    decode.add_argument("--appid", required=True, help="the account's AppID")
    decode.add_argument(
        "--aes-key", action="append", default=[], help="EncodingAESKey; repeat: current first, then previous"
    )
    decode.add_argument("--query", required=True, help="the callback's query string: timestamp=...&nonce=...&...")
    decode.add_argument("--body", required=True, help="file with the request body, or - for stdin")
    decode.add_argument("--window", type=float, default=0.0, help="also reject timestamps further than this from now (s)")
    decode.set_defaults(run=cmd_decode)

    topics = command("topics", help="wxstream's topics: partitions, offsets, counts, a group's lag")
    add_topics_arguments(topics)
    topics.set_defaults(run=cmd_topics)

    tail = command("tail", help="print a topic's records as they come, filtered by account, user, type")
    add_tail_arguments(tail)
    tail.set_defaults(run=cmd_tail)

    replay = command("replay", help="re-drive a time range of raw events through the pipeline, idempotently")
    add_replay_arguments(replay)
    replay.set_defaults(run=cmd_replay)

    salvage = command("salvage-spool", help="write the intact records of damaged ingress spools to the raw topic")
    salvage.add_argument(
        "directories", nargs="*", type=Path, metavar="DIR", help="a damaged spool (default: every one set aside)"
    )
    salvage.add_argument("--dry-run", action="store_true", help="count the records and list the damage; produce nothing")
    salvage.set_defaults(run=cmd_salvage_spool)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except (SettingsError, AccountsError) as exc:
        print(f"wxstream: {exc}", file=sys.stderr)
        return 2
