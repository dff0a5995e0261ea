"""The cached partitioner picks the partition Kafka's default partitioner picks."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner

from app.ingress.partitioner import CachedPartitioner


def test_same_partition_as_the_default_partitioner_for_every_key_and_partition_count():
    default, cached = DefaultPartitioner(), CachedPartitioner(keys=64)
    rng = random.Random(7)
    keys = [f"demo:o{rng.getrandbits(64):x}".encode() for _ in range(300)]
    for count in (1, 2, 4, 7, 16):
        partitions = list(range(count))
        for key in keys + keys:  # the second pass hits the cache (and evicts, with 64 slots)
            assert cached(key, partitions, partitions) == default(key, partitions, partitions)


def test_records_without_a_key_go_to_an_available_partition():
    cached = CachedPartitioner()

    assert {cached(None, [0, 1, 2, 3], [2]) for _ in range(20)} == {2}
