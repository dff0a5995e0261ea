"""The worker's address in Faust's views: never a wildcard, which every replica would share."""

from __future__ import annotations

import socket

import pytest

from app.worker import advertised_host


@pytest.mark.parametrize("bind", ["0.0.0.0", "::"])
def test_a_wildcard_bind_advertises_the_machine_name(bind):
    assert advertised_host(bind) == socket.gethostname()


def test_a_named_bind_is_advertised_as_it_is():
    assert advertised_host("127.0.0.1") == "127.0.0.1"
    assert advertised_host("worker-2.internal") == "worker-2.internal"
