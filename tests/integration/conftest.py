"""Fixtures that run the real stack (embedded broker, tritonserver, worker, ingress) on
free loopback ports in a temporary data directory, and always stop it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator

import pytest

from app.accounts import Account, load_accounts
from app.settings import Settings
from app.stack import Stack
from tests.integration.stack_helpers import isolated_settings, running_stack

pytestmark = pytest.mark.integration


@pytest.fixture
def stack_settings(tmp_path: Path) -> Settings:
    return isolated_settings(tmp_path / "data")


@pytest.fixture
def start_stack(stack_settings: Settings) -> Iterator[Callable[..., Stack]]:
    """Start a stack (keyword overrides go to Settings); stopped at teardown."""
    with_stacks = []

    def start(**overrides: object) -> Stack:
        context = running_stack(replace(stack_settings, **overrides))
        with_stacks.append(context)
        return context.__enter__()

    yield start
    for context in reversed(with_stacks):
        context.__exit__(None, None, None)


@pytest.fixture
def demo_account(stack_settings: Settings) -> Account:
    return next(iter(load_accounts(stack_settings).values()))
