"""`wxstream simulate`: its flags, serving the API, driving traffic with a progress line
per second and a summary, and its errors."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import pytest

from app.cli import _parser, main
from app.settings import Settings
from app.simulator import command
from tests.unit.simulator.conftest import ACCOUNTS, SAFE

ACCOUNTS_TOML = f"""
[accounts.shop]
token = "{SAFE.token}"
appid = "{SAFE.appid}"
secret = "{SAFE.secret}"
aes_keys = ["{SAFE.aes_keys[0]}"]
mode = "safe"
"""


@pytest.fixture
def accounts_file(tmp_path: Path, monkeypatch) -> Path:
    path = tmp_path / "accounts.toml"
    path.write_text(ACCOUNTS_TOML, encoding="utf-8")
    monkeypatch.setenv("WXSTREAM_ACCOUNTS", str(path))
    monkeypatch.setenv("WXSTREAM_DATA_DIR", str(tmp_path / "data"))
    return path


def prepared(*argv: str):
    args = _parser().parse_args(["simulate", *argv])
    accounts = {a.name: a for a in ACCOUNTS}
    state = command._state(accounts, args)
    plan = command._plan(args) if args.rate is not None else None
    return args, state, plan


async def test_traffic_prints_progress_and_a_summary(ingress):
    url, fake = ingress
    args, state, plan = prepared(
        "--port", "0", "--ingress", url, "--rate", "20", "--duration", "2.2", "--users", "2", "--account", "shop",
        "--linger", "0.1", "--mix", "text=3,voice=1",
    )  # fmt: skip
    lines: list[str] = []
    assert await command._simulate(Settings(), state, plan, args, lines.append) == 0
    assert lines[0].startswith("wxstream simulate: WeChat API on http://127.0.0.1:")
    progress = [line for line in lines if re.match(r"\[\s*\d+\.\d+s\] sent=\d+", line)]
    assert len(progress) >= 2
    [summary] = [line for line in lines if line.startswith("summary: ")]
    assert "sent=44 passive=44 acked=0 failed=0 retries=0" in summary
    assert "received: passive=44 api=0" in lines
    assert {account for account, _ in fake.requests} == {"shop"}


async def test_without_rate_it_serves_until_stopped():
    args, state, plan = prepared("--port", "0", "--uncertified", "plain", "--token-lifetime", "60")
    lines: list[str] = []
    task = asyncio.create_task(command._simulate(Settings(), state, plan, args, lines.append))
    while not any("serving" in line for line in lines):
        await asyncio.sleep(0.01)
    url = re.search(r"on (http://\S+)", lines[0]).group(1)
    assert "account nosecret has no `secret`" in "\n".join(lines)
    payload = {"grant_type": "client_credential", "appid": SAFE.appid, "secret": SAFE.secret}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/cgi-bin/stable_token", json=payload) as response:
            assert (await response.json())["expires_in"] == 60
    assert not state.accounts["plain"].certified and state.accounts["shop"].certified
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_fault_flags_configure_the_plan():
    _, state, _ = prepared("--fail", "custom_send:-1:0.25", "--fail-next", "token:45009", "--fail-next", "token:-1",
                           "--latency", "typing:0.5", "--token-quota", "7", "--break-next", "custom_send:drop")  # fmt: skip
    faults = state.faults.faults
    assert (faults["custom_send"].probability, faults["custom_send"].errcode) == (0.25, -1)
    assert list(faults["custom_send"].transport) == ["drop"]
    assert list(faults["token"].queue) == [45009, -1]
    assert faults["typing"].latency_s == 0.5
    assert state.limits.daily_token_quota == 7


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fail", "custom_send:-1"], "expected 3 fields"),
        (["--fail", "nope:-1:0.5"], "unknown endpoint"),
        (["--latency", "typing:soon"], "could not convert"),
        (["--break-next", "custom_send:timeout"], "unknown transport faults"),
        (["--account", "ghost"], "unknown account(s) ghost"),
        (["--rate", "5", "--mix", "sms"], "a mix weighs kinds"),
        (["--rate", "0"], "rate must be > 0"),
    ],
)
def test_bad_flags_exit_2_with_the_reason(accounts_file, capsys, argv, message):
    assert main(["simulate", "--port", "0", *argv]) == 2
    assert message in capsys.readouterr().out


def test_unreachable_ingress_exits_1(accounts_file, capsys):
    argv = ["--ingress", "http://127.0.0.1:9", "--rate", "5", "--duration", "0.5", "--linger", "0"]
    assert main(["simulate", "--port", "0", *argv]) == 1
    out = capsys.readouterr().out
    assert "sent=3 passive=0 acked=0 failed=3 retries=6" in out
    assert "no message got through; is the ingress running at http://127.0.0.1:9?" in out
