"""How a data tool runs as a `wxstream` command: one convention for errors and exit codes
(2: a bad argument, 1: the broker failed us), and clean exits on Ctrl-C and when the
reading end of a pipe goes away (`wxstream tail raw | head`)."""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from typing import IO, Callable

from kafka.errors import KafkaError

from app.datatools.broker import DataToolError
from app.datatools.records import UnknownTopic
from app.datatools.timerange import TimeRangeError
from app.settings import Settings

__all__ = ("Ticker", "UsageError", "datatool")

Body = Callable[[Settings, argparse.Namespace, IO[str], IO[str]], int]
Command = Callable[..., int]


class UsageError(ValueError):
    """Arguments that cannot go together or do not apply to the topic."""


def datatool(name: str) -> Callable[[Body], Command]:
    def wrap(body: Body) -> Command:
        @functools.wraps(body)
        def run(
            settings: Settings, args: argparse.Namespace, out: IO[str] = sys.stdout, err: IO[str] = sys.stderr
        ) -> int:
            try:
                return body(settings, args, out, err)
            except (UsageError, UnknownTopic, TimeRangeError) as exc:
                print(f"wxstream {name}: {exc}", file=err)
                return 2
            except DataToolError as exc:
                print(f"wxstream {name}: {exc}", file=err)
                return 1
            except KafkaError as exc:
                print(f"wxstream {name}: the broker failed: {type(exc).__name__}: {exc}", file=err)
                return 1
            except KeyboardInterrupt:
                return 0
            except BrokenPipeError:
                if out is sys.stdout:  # keep Python from failing to flush it at exit
                    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return 0

        return run

    return wrap


class Ticker:
    """True once per `every_s`, for a long command's progress line."""

    def __init__(self, every_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._every_s, self._clock = every_s, clock
        self._next = clock() + every_s

    def due(self) -> bool:
        now = self._clock()
        if now < self._next:
            return False
        self._next = now + self._every_s
        return True
