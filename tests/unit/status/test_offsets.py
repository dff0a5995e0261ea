"""Consumer lag of a partition from highwater, committed and read offsets."""

from __future__ import annotations

import pytest

from app.status.offsets import partition_lag


@pytest.mark.parametrize(
    ("highwater", "committed", "read", "lag"),
    [
        (10, 7, None, 3),  # committed names the next record to process
        (10, 10, 9, 0),
        (10, 7, 9, 3),  # committed wins over read: read records may not be processed yet
        (10, None, 6, 3),  # before this worker's first commit: the last record read
        (0, None, None, 0),  # an empty partition has no lag
        (5, None, None, None),  # records there, none read or committed here: unknown
        (None, 3, 2, None),  # not fetched yet: no highwater
        (4, 6, None, 0),  # a stale highwater never makes lag negative
    ],
)
def test_partition_lag(highwater, committed, read, lag):
    assert partition_lag(highwater, committed, read) == lag
