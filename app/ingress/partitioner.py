"""Kafka's default partitioner, remembering the hashes of recent keys.

Every topic is keyed by user, and a record must land on the partition Kafka's clients
(Faust's included) pick for its key: murmur2 of the key, as in Kafka's Java client.
aiokafka computes murmur2 in pure Python, about 10 us a record and two records a
callback; users write again and again within minutes, so a recent key's hash is looked up.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

from aiokafka.partitioner import DefaultPartitioner, murmur2

__all__ = ("CachedPartitioner",)


class CachedPartitioner:
    """A drop-in for aiokafka's `DefaultPartitioner` (same partition for every key)."""

    def __init__(self, keys: int = 65536) -> None:
        self._hash = lru_cache(maxsize=keys)(murmur2)
        self._unkeyed = DefaultPartitioner()

    def __call__(self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]) -> int:
        if key is None:
            return self._unkeyed(key, all_partitions, available)
        return all_partitions[(self._hash(key) & 0x7FFFFFFF) % len(all_partitions)]
