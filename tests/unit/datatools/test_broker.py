"""Finding the broker, and where a read by time starts on a broker that cannot say."""

from __future__ import annotations

import json
import os

import pytest
from kafka.structs import OffsetAndTimestamp

from app.datatools.broker import DataToolError, find_bootstrap
from app.offsets import first_offset_at
from app.settings import Settings

TARGET = 1_800_000_000_000


def test_a_real_answer_to_a_lookup_by_time_is_used():
    assert first_offset_at(OffsetAndTimestamp(42, TARGET + 5, 0), TARGET, 10, 100) == 42


def test_no_record_that_late_means_starting_at_the_end():
    assert first_offset_at(None, TARGET, 10, 100) == 100


def test_an_answer_without_a_timestamp_means_reading_from_the_beginning():
    # The embedded broker answers every lookup by time with offset 0, timestamp -1.
    assert first_offset_at(OffsetAndTimestamp(0, -1, 0), TARGET, 10, 100) == 10


def test_an_answer_outside_the_partition_is_clamped():
    assert first_offset_at(OffsetAndTimestamp(3, TARGET, 0), TARGET, 10, 100) == 10
    assert first_offset_at(OffsetAndTimestamp(300, TARGET, 0), TARGET, 10, 100) == 100


def test_the_kafka_url_wins(tmp_path):
    assert find_bootstrap(Settings(data_dir=tmp_path, kafka_url="kafka:9092")) == "kafka:9092"


def test_without_it_the_running_stack_is_used(tmp_path):
    stack = {"kafka_url": "127.0.0.1:4242", "triton_url": "", "ingress_url": "", "web_url": "", "pid": os.getpid()}
    (tmp_path / "stack.json").write_text(json.dumps(stack))
    assert find_bootstrap(Settings(data_dir=tmp_path)) == "127.0.0.1:4242"


def test_with_neither_the_error_says_how_to_get_one(tmp_path):
    with pytest.raises(DataToolError, match="WXSTREAM_KAFKA_URL is unset"):
        find_bootstrap(Settings(data_dir=tmp_path))
