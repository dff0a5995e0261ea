"""Consumer lag of one partition from the offsets Faust knows of it (pure)."""

from __future__ import annotations

__all__ = ("partition_lag",)


def partition_lag(highwater: int | None, committed: int | None, read: int | None) -> int | None:
    """Records not yet processed, or None when unknown.

    Kafka's offsets name the next record: `highwater` is the offset the next record written
    will get, `committed` the next one to process. `read` is the offset of the last record
    read, used until this worker's first commit of the partition. With neither, only an
    empty partition has a known lag (0); a partition Faust has not fetched has no highwater.
    """
    if highwater is None:
        return None
    if committed is not None:
        position = committed
    elif read is not None:
        position = read + 1
    elif highwater == 0:
        position = 0
    else:
        return None
    return max(highwater - position, 0)
