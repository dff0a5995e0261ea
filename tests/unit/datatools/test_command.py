"""The data tools' exit codes: 2 for bad arguments, 1 when the broker fails us, 0 on Ctrl-C."""

from __future__ import annotations

import argparse
import io

import pytest
from kafka.errors import KafkaTimeoutError

from app.datatools.broker import DataToolError
from app.datatools.command import UsageError, datatool
from app.datatools.records import UnknownTopic
from app.datatools.timerange import TimeRangeError
from app.settings import Settings


def run_raising(exc: BaseException) -> tuple[int, str]:
    @datatool("tail")
    def body(settings, args, out, err):
        raise exc

    err = io.StringIO()
    return body(Settings(), argparse.Namespace(), io.StringIO(), err), err.getvalue()


@pytest.mark.parametrize("exc", [UsageError("bad"), UnknownTopic("bad"), TimeRangeError("bad")])
def test_bad_arguments_exit_2_with_the_reason(exc):
    assert run_raising(exc) == (2, "wxstream tail: bad\n")


def test_broker_trouble_exits_1_with_the_reason():
    assert run_raising(DataToolError("no broker")) == (1, "wxstream tail: no broker\n")
    code, message = run_raising(KafkaTimeoutError("slow"))
    assert code == 1 and message.startswith("wxstream tail: the broker failed: KafkaTimeoutError")


def test_ctrl_c_and_a_closed_pipe_end_quietly():
    assert run_raising(KeyboardInterrupt()) == (0, "")
    assert run_raising(BrokenPipeError()) == (0, "")
