"""The flags of `wxstream topics`, `tail` and `replay`, apart from the commands so that
building the CLI's parser imports nothing heavy."""

from __future__ import annotations

import argparse

__all__ = ("add_topics_arguments", "add_tail_arguments", "add_replay_arguments")

TOPIC_HELP = "topic name or alias: raw, clean, replies, deliveries, deadletter"
TIME_HELP = "a duration back from now (10m, 1h30m, 2d) or a local date and time (2026-11-25T10:00)"


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--account", help="only this account's records")
    parser.add_argument("--user", "--openid", dest="openid", help="only this user's records (openid)")
    parser.add_argument("--type", help="only this message type (text, voice, ...) or event (subscribe, CLICK, ...)")


def _topics_options(parser: argparse.ArgumentParser, *, inherited: bool = False) -> None:
    """--group and --json, before or after `describe NAME`; after it, given ones win."""
    keep = {"default": argparse.SUPPRESS} if inherited else {}
    parser.add_argument("--group", help="consumer group for committed offsets and lag (default: the worker's)", **keep)
    parser.add_argument("--json", action="store_true", help="machine-readable output", **keep)


def add_topics_arguments(parser: argparse.ArgumentParser) -> None:
    _topics_options(parser)
    what = parser.add_subparsers(dest="action", metavar="describe NAME")
    describe = what.add_parser("describe", help="one topic, by name or alias; any topic on the broker")
    describe.add_argument("name", help=TOPIC_HELP)
    _topics_options(describe, inherited=True)


def add_tail_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("topic", help=TOPIC_HELP)
    start = parser.add_mutually_exclusive_group()
    start.add_argument("-n", dest="last", type=int, help="start with the last N matching records (default: 10)")
    start.add_argument("--from-beginning", action="store_true", help="start with the first record")
    start.add_argument("--since", help=f"start with the records written since: {TIME_HELP}")
    parser.add_argument(
        "--follow", action=argparse.BooleanOptionalAction, default=True, help="keep printing new records (default: on)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line: position, key and value")
    _filters(parser)


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", required=True, help=f"replay raw events written since: {TIME_HELP}")
    parser.add_argument("--until", help="... and before: the same forms (default: now)")
    parser.add_argument("--dry-run", action="store_true", help="count the events per account and type; produce nothing")
    _filters(parser)
