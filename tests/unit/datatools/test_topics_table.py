"""`wxstream topics`: counts and lag per partition, as a table and as JSON."""

from __future__ import annotations

from app.datatools.topics import PartitionOffsets, TopicOffsets, format_table, to_json
from app.topics import RAW_EVENTS, REPLIES

RAW = TopicOffsets(
    RAW_EVENTS.name, (PartitionOffsets(0, 0, 120, 118), PartitionOffsets(1, 10, 60, None))
)
REPLIES_TOPIC = TopicOffsets(REPLIES.name, (PartitionOffsets(0, 0, 5, None),))
MISSING = TopicOffsets("wxstream.something.v1", ())


def test_counts_and_lag_per_partition_and_per_topic():
    assert [p.messages for p in RAW.partitions] == [120, 50]
    assert [p.lag for p in RAW.partitions] == [2, None]
    assert (RAW.messages, RAW.lag) == (170, 2)
    assert REPLIES_TOPIC.lag is None
    assert not MISSING.exists and MISSING.messages == 0


def test_a_commit_past_the_end_is_no_negative_lag():
    assert PartitionOffsets(0, 0, 10, 12).lag == 0


def test_the_table_has_a_row_per_partition_and_says_what_is_missing():
    table = format_table([RAW, REPLIES_TOPIC, MISSING], "wxstream")
    lines = table.splitlines()
    assert lines[0] == "consumer group: wxstream"
    assert lines[1] == f"{RAW_EVENTS.name} (raw): 2 partitions, 170 messages, lag 2"
    assert lines[3].split() == ["0", "0", "120", "120", "118", "2"]
    assert lines[4].split() == ["1", "10", "60", "50", "-", "-"]
    assert lines[5] == f"{REPLIES.name} (replies): 1 partition, 5 messages, nothing committed by wxstream"
    assert lines[-1].startswith("wxstream.something.v1: missing")


def test_json_has_the_same_figures():
    data = to_json([RAW, MISSING], "analytics", "127.0.0.1:9092")
    assert (data["group"], data["bootstrap"]) == ("analytics", "127.0.0.1:9092")
    raw, missing = data["topics"]
    assert (raw["name"], raw["alias"], raw["exists"], raw["messages"], raw["lag"]) == (RAW_EVENTS.name, "raw", True, 170, 2)
    assert raw["partitions"][1] == {"partition": 1, "begin": 10, "end": 60, "messages": 50, "committed": None, "lag": None}
    assert (missing["exists"], missing["alias"], missing["partitions"]) == (False, None, [])
