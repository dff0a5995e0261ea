"""The model client on the real stack: a deadline the model cannot meet; a tritonserver
that is killed (the circuit breaker opens, users get the fallback at once) and started
again on the same gRPC port (the breaker half-opens, closes, the model answers again);
and gray release of a candidate model to one account."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from app.ingress.publisher import RawEventPublisher
from app.settings import Settings
from app.topics import REPLIES
from tests.integration.kafka_helpers import publish_all, raw_text_event, read_topic
from tests.integration.stack_helpers import isolated_settings, running_stack

pytestmark = pytest.mark.integration

ACCOUNTS_TOML = """
[accounts.shop]
token = "shop-token"
appid = "wxshop0000000001"
user_per_minute = 1000
account_per_second = 1000

[accounts.beta]
token = "beta-token"
appid = "wxbeta0000000001"
user_per_minute = 1000
account_per_second = 1000
"""

FALLBACK = "The assistant is resting. Please ask again in a minute."
_ids = iter(range(int(time.time() * 1000), 1 << 62))


def event(account: str, openid: str, text: str):
    return raw_text_event(account, openid, next(_ids), text)


def model_repository(root: Path) -> Path:
    """triton_models/ plus `echo_next`, a copy of echo, as the candidate of a gray release."""
    repository = root / "models"
    source = Settings().triton_models / "echo"
    shutil.copytree(source, repository / "echo", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(source, repository / "echo_next", ignore=shutil.ignore_patterns("__pycache__"))
    config = repository / "echo_next" / "config.pbtxt"
    config.write_text(config.read_text().replace('name: "echo"', 'name: "echo_next"'))
    return repository


def stack_settings(root: Path, **overrides: object) -> Settings:
    (root / "accounts.toml").write_text(ACCOUNTS_TOML)
    return isolated_settings(root / "data", accounts=root / "accounts.toml", model_fallback_text=FALLBACK, **overrides)


class Client:
    """Publishes raw events as the ingress does and reads the replies and the metrics."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.publisher = RawEventPublisher(replace(settings, produce_timeout_s=30), settings.kafka_url)

    async def ask(self, *events, timeout: float = 60) -> dict[str, dict]:
        """Publish `events`; their replies by dedupe key."""
        await publish_all(self.publisher, events)
        keys = {e.dedupe_key for e in events}
        records = await read_topic(
            self.settings.kafka_url,
            REPLIES.name,
            lambda r: keys <= {json.loads(x.value)["in_reply_to"] for x in r},
            timeout,
        )
        return {v["in_reply_to"]: v for v in map(lambda r: json.loads(r.value), records) if v["in_reply_to"] in keys}

    async def metric(self, name: str) -> float:
        async with aiohttp.ClientSession() as session:
            async with session.get(self.settings.web_url + "/metrics") as response:
                text = await response.text()
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return 0.0


@pytest.fixture
async def client_of():
    clients: list[Client] = []

    async def make(settings: Settings) -> Client:
        client = Client(settings)
        await client.publisher.start()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.publisher.stop()


async def test_a_deadline_the_model_cannot_meet_gets_the_fallback_reply(tmp_path, client_of):
    # 0.2 ms: below the echo model's fastest answer over loopback (about 0.75 ms).
    with running_stack(stack_settings(tmp_path, model_timeout_s=0.0002)) as stack:
        client = await client_of(stack.child_settings)
        asked = [event("shop", f"o_slow_{i}", f"question {i}") for i in range(3)]
        replies = await client.ask(*asked)
        assert [(replies[e.dedupe_key]["text"], replies[e.dedupe_key]["model"]) for e in asked] == [
            (FALLBACK, "fallback")
        ] * 3
        errors = await client.metric('wxstream_model_errors_total{kind="deadline_exceeded",model="echo"}')
        fallbacks = await client.metric(
            'wxstream_model_fallbacks_total{account="shop",model="echo",reason="deadline_exceeded"}'
        )
        assert errors == fallbacks == 3
        assert await client.metric('wxstream_model_retries_total{model="echo"}') == 0, "a deadline is never retried"
        assert await client.metric('wxstream_replies_total{account="shop",source="fallback"}') == 3


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("resilience")
    settings = stack_settings(
        root,
        triton_models=model_repository(root),
        model_timeout_s=5.0,
        model_retries=2,
        model_breaker_failures=2,
        model_breaker_cooldown_s=6.0,
        model_candidate="echo_next",
        model_candidate_accounts="beta",
    )
    with running_stack(settings) as stack:
        yield stack


async def test_gray_release_sends_the_named_account_to_the_candidate_model(stack, client_of):
    client = await client_of(stack.child_settings)
    stable, candidate = event("shop", "o_gray", "to stable"), event("beta", "o_gray", "to candidate")
    replies = await client.ask(stable, candidate)
    assert (replies[stable.dedupe_key]["text"], replies[stable.dedupe_key]["model"]) == ("to stable", "echo")
    assert (replies[candidate.dedupe_key]["text"], replies[candidate.dedupe_key]["model"]) == ("to candidate", "echo_next")
    for model in ("echo", "echo_next"):
        name = f'wxstream_model_request_duration_seconds_count{{model="{model}",outcome="ok"}}'
        assert await client.metric(name) >= 1, model


async def test_breaker_opens_while_tritonserver_is_down_and_closes_once_it_is_back(stack, client_of):
    client = await client_of(stack.child_settings)
    breaker = 'wxstream_model_breaker_state{model="echo"}'
    before = event("shop", "o_before", "before the crash")
    assert (await client.ask(before))[before.dedupe_key]["model"] == "echo"
    grpc_url = stack.child_settings.triton_url

    stack.stop_triton(kill=True)
    # Two failures (each after its retries) open the breaker; later requests are refused at
    # once. The worker handles several users' messages at a time, so more than two may have
    # been sent before the breaker opened: each either reached the dead server or was refused.
    down = [event("shop", f"o_down_{i}", f"while down {i}") for i in range(4)]
    replies = await client.ask(*down)
    assert {replies[e.dedupe_key]["text"] for e in down} == {FALLBACK}
    assert await client.metric(breaker) == 2
    failed = await client.metric('wxstream_model_errors_total{kind="unavailable",model="echo"}')
    refused = await client.metric('wxstream_model_breaker_rejected_total{model="echo"}')
    assert failed >= 2 and failed + refused == len(down)
    assert await client.metric('wxstream_model_retries_total{model="echo"}') == 2 * failed
    assert await client.metric('wxstream_model_fallbacks_total{account="shop",model="echo",reason="circuit_open"}') == refused

    # Refused at once: no attempt, no retry, no wait for the deadline (the rest of the
    # reply's time is the pipeline's own).
    late = event("shop", "o_refused", "still down")
    reply = (await client.ask(late))[late.dedupe_key]
    assert reply["text"] == FALLBACK
    assert reply["created_at"] - late.received_at < stack.child_settings.model_timeout_s
    assert await client.metric('wxstream_model_breaker_rejected_total{model="echo"}') == refused + 1
    assert await client.metric('wxstream_model_errors_total{kind="unavailable",model="echo"}') == failed
    assert await client.metric('wxstream_model_retries_total{model="echo"}') == 2 * failed

    stack.start_triton()
    assert f"--grpc-port={grpc_url.rsplit(':', 1)[1]}" in stack.component("tritonserver").argv
    # The cool-down passes, a probe gets through and closes the breaker.
    deadline = time.monotonic() + 30
    answered = None
    while answered is None:
        assert time.monotonic() < deadline, "the model did not answer again after tritonserver came back"
        probe = event("shop", f"o_after_{next(_ids)}", "after the restart")
        reply = (await client.ask(probe))[probe.dedupe_key]
        if reply["model"] == "echo":
            answered = reply
        else:
            assert reply["text"] == FALLBACK
            await asyncio.sleep(0.5)
    assert answered["text"] == "after the restart"
    assert await client.metric(breaker) == 0
    transitions = 'wxstream_model_breaker_transitions_total{{model="echo",state="{}"}}'
    assert await client.metric(transitions.format("half_open")) >= 1
    assert await client.metric(transitions.format("closed")) == 1
    again = [event("shop", f"o_again_{i}", f"again {i}") for i in range(3)]
    replies = await client.ask(*again)
    assert [replies[e.dedupe_key]["text"] for e in again] == [f"again {i}" for i in range(3)]
