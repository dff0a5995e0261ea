"""What `wxstream up` checks before it starts anything."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict

import pytest

from app.embedded.process import ComponentError, port_in_use
from app.settings import Settings
from app.stack import STACK_FILE, Stack, StackAddresses


def test_a_stack_already_running_from_the_data_dir_is_named_and_nothing_starts(tmp_path):
    running = StackAddresses("127.0.0.1:9092", "127.0.0.1:8001", "http://127.0.0.1:8080", "http://127.0.0.1:6066", os.getppid())
    (tmp_path / STACK_FILE).write_text(json.dumps(asdict(running)))
    stack = Stack(Settings(data_dir=tmp_path), echo=lambda line: None)

    with pytest.raises(ComponentError, match=rf"already running from {tmp_path} \(pid {os.getppid()}, ingress http://127.0.0.1:8080\)"):
        stack.start()

    assert stack.processes == []
    stack.stop()
    assert (tmp_path / STACK_FILE).exists(), "the running stack's file is left to it"


def test_a_model_missing_from_the_repository_is_named_before_anything_starts(tmp_path):
    stack = Stack(Settings(data_dir=tmp_path, model_name="nosuch"), echo=lambda line: None)

    with pytest.raises(ComponentError, match=r"no model 'nosuch' in .*triton_models .*it has: .*echo"):
        stack.start()
    assert stack.processes == []


def test_a_fixed_port_in_use_is_named_before_anything_starts(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        stack = Stack(Settings(data_dir=tmp_path, ingress_port=port, web_port=0, simulator_port=0), echo=lambda line: None)

        with pytest.raises(ComponentError, match=rf"port 127.0.0.1:{port} \(WXSTREAM_INGRESS_PORT\) already in use"):
            stack.start()
    assert stack.processes == []


def test_a_port_whose_server_is_gone_but_left_connections_behind_is_free():
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's servers do
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server closes first: its side of the connection waits in TIME_WAIT
        client.close()
    assert not port_in_use("127.0.0.1", port)
