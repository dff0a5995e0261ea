"""The worker's status page, its JSON and Faust's metrics on the real stack after a few
messages (and one poison record) went through; the page is also loaded in headless
Chromium, as an operator's browser would show it."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
from aiokafka import AIOKafkaProducer

from app.accounts import load_accounts
from app.send import send_text
from app.settings import Settings
from app.topics import RAW_EVENTS, REPLIES, user_key
from app.worker_views import STATUS_JSON_PATH, STATUS_PATH
from tests.integration.kafka_helpers import read_topic
from tests.integration.stack_helpers import isolated_settings, running_stack

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
OPENID = "o_status_page_user"
TEXTS = ("hello, status page", "what is my lag?")
AGENTS = ("wxstream.dedupe", "wxstream.outbound")
RAW = RAW_EVENTS.name


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode("utf-8")


def _settled(status: dict) -> bool:
    """Every message processed and committed, and tables sampled since: the agents
    counted, no lag left, the user's session counted."""
    events = {agent["name"]: agent["events"] for agent in status["agents"]}
    tables = {table["name"]: table["keys"] for table in status["tables"]}
    return (
        events.get("wxstream.dedupe", 0) >= len(TEXTS) + 1
        and events.get("wxstream.outbound", 0) >= len(TEXTS)
        and any(row["topic"] == RAW for row in status["lag"])
        and status["total_lag"] == 0
        and tables.get("sessions-v2", 0) >= 1
    )


async def _send_traffic(settings: Settings) -> None:
    account = next(iter(load_accounts(settings).values()))
    for text in TEXTS:
        answer = await send_text(settings, account, OPENID, text, timeout=60)
        assert answer.text == text  # the echo model
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_url)
    await producer.start()
    try:  # a record that is not a RawEvent: one dead letter
        await producer.send_and_wait(RAW, b"not json", key=user_key(account.name, OPENID).encode())
    finally:
        await producer.stop()
    await read_topic(settings.kafka_url, REPLIES.name, lambda records: len(records) >= len(TEXTS))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A running stack after the traffic, once the worker's status shows all of it."""
    with running_stack(isolated_settings(tmp_path_factory.mktemp("status") / "data")) as stack:
        settings = stack.child_settings
        asyncio.run(_send_traffic(settings))
        deadline = time.monotonic() + 60
        while not _settled(status := json.loads(_get(settings.web_url + STATUS_JSON_PATH))):
            assert time.monotonic() < deadline, f"status did not settle: {status}"
            time.sleep(1)
        yield settings


def test_status_json_counts_what_went_through(served: Settings) -> None:
    text = _get(served.web_url + STATUS_JSON_PATH)
    status = json.loads(text)

    assert status["ready"] is True
    assert {agent["name"] for agent in status["agents"]} >= set(AGENTS)
    assert {row["topic"] for row in status["lag"]} >= {RAW}
    assert {table["name"] for table in status["tables"]} >= {"sessions-v2", "seen-v2"}
    assert status["breakers"] == [{"model": "echo", "state": "closed"}]
    assert {"name": "model", "count": len(TEXTS)} in status["replies_by_source"]
    assert status["dead_letters_by_reason"] == [{"name": "undecodable", "count": 1}]
    assert status["ingress"] == {"url": served.ingress_url, "spool_depth": 0}
    for private in (OPENID, *TEXTS):  # counts only: nothing a user said or who they are
        assert private not in text


def test_faust_sensor_metrics_are_served(served: Settings) -> None:
    exposition = _get(served.web_url + "/metrics")

    for series in (
        f'wxstream_faust_messages_received_total{{topic="{RAW}"}}',
        'wxstream_faust_events_total{agent="wxstream.outbound"}',
        'wxstream_faust_event_duration_seconds_count{agent="wxstream.dedupe"}',
        'wxstream_faust_table_keys{table="sessions-v2"}',
        "wxstream_faust_commit_duration_seconds_count",
        f'wxstream_consumer_lag{{partition="0",topic="{RAW}"}}',
    ):
        assert series in exposition


def test_users_data_needs_the_admin_token(served: Settings) -> None:
    """The status views need no token because they hold no users' data; Faust's table
    browser would serve rows (sessions included) to anyone, so it is off."""
    with pytest.raises(urllib.error.HTTPError) as table_view:
        _get(served.web_url + "/table/sessions-v2/")
    assert table_view.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as session_view:
        _get(f"{served.web_url}/wxstream/session/demo/{OPENID}")
    assert session_view.value.code == 403


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"chromium exited {done.returncode}: {done.stderr[-2000:]}"
    return done


def _table(dom: str, table_id: str) -> str:
    match = re.search(rf'<table id="{table_id}">.*?</table>', dom, re.S)
    assert match, f"no table #{table_id} in the page"
    return match.group(0)


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent: `make browser` installs it (as root, with apt-get)")
def test_status_page_in_headless_chromium(served: Settings, tmp_path: Path) -> None:
    url = served.web_url + STATUS_PATH

    dom = _chromium(tmp_path, "--dump-dom", url).stdout
    screenshot = tmp_path / "status.png"
    _chromium(tmp_path, f"--screenshot={screenshot}", "--window-size=1280,900", url)

    assert "wxstream worker" in dom
    agents = _table(dom, "agents")
    assert all(agent in agents for agent in AGENTS)
    lag = _table(dom, "lag")
    assert RAW in lag and "<td class=\"n\">0</td>" in lag
    breakers = _table(dom, "breakers")
    assert "echo" in breakers and "closed" in breakers
    assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
