"""Where to start reading a partition for the records since a point in time."""

from __future__ import annotations

from typing import Protocol

__all__ = ("first_offset_at",)


class OffsetAndTimestamp(Protocol):
    """A broker's answer to a lookup by time (kafka-python's and aiokafka's alike)."""

    offset: int
    timestamp: int


def first_offset_at(found: OffsetAndTimestamp | None, target_ms: int, begin: int, end: int) -> int:
    """Where records at or after `target_ms` start, from the broker's answer to a lookup by
    time. A broker that answers without a record's timestamp (the embedded one always says
    offset 0, timestamp -1) is read from the beginning instead; readers then skip records
    before the target themselves."""
    if found is None:  # no record that late
        return end
    if found.timestamp < target_ms:  # not a real answer
        return begin
    return min(max(found.offset, begin), end)
