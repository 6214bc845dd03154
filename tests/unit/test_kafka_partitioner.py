"""Every producer must put a key on the partition the client's default partitioner would, or a run's
messages from different services would land on different partitions and lose their order."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st
from millrace_common.platform.kafka import KEY_HASHES_REMEMBERED, _key_hash, key_partitioner

pytestmark = pytest.mark.unit


@given(key=st.binary(min_size=0, max_size=64), count=st.integers(1, 64))
def test_the_remembered_hash_picks_the_default_partitioners_partition(key, count):
    partitions = list(range(count))
    assert key_partitioner(key, partitions, partitions) == DefaultPartitioner()(key, partitions, partitions)
    assert key_partitioner(key, partitions, partitions) == DefaultPartitioner()(key, partitions, partitions)


def test_a_message_without_a_key_goes_to_an_available_partition():
    assert key_partitioner(None, [0, 1, 2], [2]) == 2
    assert key_partitioner(None, [0, 1, 2], []) in (0, 1, 2)


def test_the_remembered_hashes_stay_bounded_however_many_keys_pass():
    # Every run has a key of its own; an unbounded (or run-history-sized) memory of them grows the
    # process with every run it has ever produced for.
    _key_hash.cache_clear()
    partitions = list(range(12))
    for number in range(KEY_HASHES_REMEMBERED * 3):
        key = f"run-{number:08d}".encode()
        expected = DefaultPartitioner()(key, partitions, partitions)
        assert key_partitioner(key, partitions, partitions) == expected
    assert _key_hash.cache_info().currsize == KEY_HASHES_REMEMBERED
    assert KEY_HASHES_REMEMBERED <= 4_096
