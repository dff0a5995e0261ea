"""Running the real stack from tests: isolated settings, start, stop, and the check that
nothing is left running."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from app.settings import Settings
from app.stack import Stack


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


def isolated_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings from a clean environment: free ports (the stack's WeChat simulator too),
    two partitions, `data_dir`, and the echo model (replies equal the user's text; tritonserver loads nothing else)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WXSTREAM_")}
    overrides = {"model_name": "echo", **overrides}
    return Settings.from_env(
        env, data_dir=data_dir, ingress_port=0, web_port=0, simulator_port=0, partitions=2, **overrides
    )


@contextmanager
def running_stack(settings: Settings) -> Iterator[Stack]:
    """A started stack; on exit it is stopped and no process of it may be left."""
    stack = Stack(settings, echo=lambda line: None)
    pgids: set[int] = set()
    try:
        stack.start()
        pgids.update(p.pid for p in stack.processes if p.pid)
        yield stack
    finally:
        pgids.update(p.pid for p in stack.processes if p.pid)
        stack.stop()
    assert process_group_members(pgids) == [], "processes left behind by the stack"
