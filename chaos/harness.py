"""A fresh stack for one scenario, with WeChat played by the simulator in this process.

The stack is the one `wxstream up` runs (app/stack.py: embedded broker, tritonserver with
the echo model, worker, ingress), on free loopback ports in a scratch data directory.
Its outbound sender calls the simulator's WeChat API served here, and the load goes
through the simulator's callback sender here too, so that one recorder sees every
message a user received, passive or by the API.

Stack's calls block (they wait for a component to be ready), so they run on one thread
of their own while the load goes on in the event loop. It is always the same thread:
children are started with PR_SET_PDEATHSIG, which fires when the thread that started
them ends.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import secrets
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, TypeVar

import aiohttp

from app.accounts import Account, load_accounts
from app.datatools.broker import open_consumer, partitions_of, read, spans_from
from app.embedded.process import free_port
from app.settings import Settings
from app.simulator.server import ApiServer
from app.simulator.state import SimState
from app.stack import Stack
from app.topics import TopicSpec
from bench.echo_stack import echo_stack_settings

__all__ = ("ACCOUNT", "PLAIN_ACCOUNT", "ChaosStack")

ACCOUNT = "chaos"  # safe mode: the users' load
PLAIN_ACCOUNT = "chaosplain"  # plain mode: hostile bodies reach the XML parser unsealed
T = TypeVar("T")


def write_accounts(path: Path) -> None:
    """Two accounts with fresh secrets, rate limits out of the load's reach: every
    message is answered by the model (or its fallback), never by a rate notice."""
    key = base64.b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")
    limits = "user_per_minute = 1000000\naccount_per_second = 1000000\n"
    path.write_text(
        f"[accounts.{ACCOUNT}]\n"
        f'token = "{secrets.token_hex(16)}"\nappid = "wx{secrets.token_hex(8)}"\n'
        f'aes_keys = ["{key}"]\nsecret = "{secrets.token_hex(16)}"\nmode = "safe"\n'
        f'original_id = "gh_c4a05c4a05c4"\n{limits}\n'
        f"[accounts.{PLAIN_ACCOUNT}]\n"
        f'token = "{secrets.token_hex(16)}"\nappid = "wx{secrets.token_hex(8)}"\n'
        f'secret = "{secrets.token_hex(16)}"\nmode = "plain"\n{limits}',
        encoding="utf-8",
    )


def _read_values(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every record of `topic` as it is now, decoded from JSON."""
    consumer = open_consumer(bootstrap, "wxstream-chaos")
    try:
        spans = spans_from(consumer, partitions_of(consumer, topic), None)
        starts = {tp: span.start for tp, span in spans.items()}
        stops = {tp: span.stop for tp, span in spans.items()}
        return [json.loads(record.value) for record in read(consumer, starts, stops)]
    finally:
        consumer.close()


class ChaosStack:
    """One scenario's stack and the simulator that plays WeChat for it; used as an async
    context manager, which always stops both."""

    def __init__(self, work: Path, *, partitions: int | None = None, echo: Callable[[str], None] | None = None) -> None:
        work.mkdir(parents=True, exist_ok=True)
        accounts_file = work / "accounts.toml"
        write_accounts(accounts_file)
        self.api_port = free_port("127.0.0.1")
        self.settings = echo_stack_settings(
            work, accounts_file, self.api_port, partitions, admin_token=secrets.token_hex(16)
        )
        self.accounts: dict[str, Account] = dict(load_accounts(self.settings))
        self.state = SimState.of(self.accounts.values())
        self.stack = Stack(self.settings, echo=echo or (lambda line: print(line, file=sys.stderr, flush=True)))
        self._api = ApiServer(self.state, port=self.api_port)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="chaos-stack")

    async def __aenter__(self) -> "ChaosStack":
        await self._api.start()
        try:
            await self.call(self.stack.start)
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        try:
            await self.call(self.stack.stop)
        finally:
            self._thread.shutdown()
            await self._api.stop()

    async def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run a blocking Stack method on the stack's own thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, functools.partial(fn, *args, **kwargs))

    @property
    def child(self) -> Settings:
        assert self.stack.child_settings is not None, "the stack is not started"
        return self.stack.child_settings

    @property
    def kafka_url(self) -> str:
        assert self.child.kafka_url is not None
        return self.child.kafka_url

    def down(self) -> list[str]:
        """Components that have exited."""
        return [proc.name for proc in self.stack.processes if not proc.alive]

    async def ingress_get(self, path: str) -> tuple[int | None, str]:
        """The ingress's status and body for GET `path`; (None, why) when it does not answer."""
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
                async with session.get(self.child.ingress_url + path) as response:
                    return response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return None, f"{type(exc).__name__}: {exc}"

    async def session_turns(self, account: str, openid: str) -> list[dict[str, str]]:
        """The user's stored conversation, from the worker; [] when there is none."""
        url = f"{self.child.web_url}/wxstream/session/{account}/{openid}"
        headers = {"Authorization": f"Bearer {self.settings.admin_token}"}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            async with session.get(url, headers=headers) as response:
                if response.status == 404:
                    return []
                if response.status != 200:
                    raise RuntimeError(f"{url} answered {response.status}: {await response.text()}")
                return (await response.json())["turns"]

    async def topic_values(self, topic: TopicSpec) -> list[dict[str, Any]]:
        return await asyncio.to_thread(_read_values, self.kafka_url, topic.name)
