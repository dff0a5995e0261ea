"""Fixtures that run the real stack (embedded broker, tritonserver, worker, ingress) on
free loopback ports in a temporary data directory, and always stop it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator

import pytest

from app.accounts import Account, load_accounts
from app.settings import Settings
from app.stack import Stack

pytestmark = pytest.mark.integration


def process_group_members(pgids: set[int]) -> list[int]:
    """PIDs of live (non-zombie) processes in any of `pgids`."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        state, pgid = fields[0], int(fields[2])
        if pgid in pgids and state != "Z":
            members.append(int(entry.name))
    return members


@pytest.fixture
def stack_settings(tmp_path: Path) -> Settings:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WXSTREAM_")}
    return Settings.from_env(env, data_dir=tmp_path / "data", ingress_port=0, web_port=0, partitions=2)


@pytest.fixture
def start_stack(stack_settings: Settings) -> Iterator[Callable[..., Stack]]:
    """Start a stack (keyword overrides go to Settings); on teardown stop it and assert that
    no process of it is left."""
    stacks: list[Stack] = []
    pgids: set[int] = set()

    def start(**overrides: object) -> Stack:
        from dataclasses import replace

        stack = Stack(replace(stack_settings, **overrides), echo=lambda line: None)
        stacks.append(stack)
        stack.__enter__()
        pgids.update(p.pid for p in stack.processes if p.pid)
        return stack

    yield start
    for stack in stacks:
        pgids.update(p.pid for p in stack.processes if p.pid)
        stack.stop()
    assert process_group_members(pgids) == [], "processes left behind by the stack"


@pytest.fixture
def demo_account(stack_settings: Settings) -> Account:
    return next(iter(load_accounts(stack_settings).values()))
