"""The fetch wait: short while records flow, long after a second without any, short again with the
first records; and aiokafka still has the attribute the wait is set through."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.consumer.fetcher import Fetcher
from hypothesis import given
from hypothesis import strategies as st
from millrace_common.platform import fetch_wait
from millrace_common.platform.fetch_wait import (
    FETCHER_TIMEOUT_MS,
    FETCHER_WAIT_ATTRIBUTE,
    FetchWaitPolicy,
    apply,
)

pytestmark = pytest.mark.unit


def test_busy_until_a_second_without_records_then_idle_then_busy_again():
    policy = FetchWaitPolicy(busy_ms=20, idle_ms=500, idle_after_seconds=1.0)
    assert policy.observe(False, 0.0) == 20  # just started: busy until a second has passed
    assert policy.observe(False, 0.9) == 20
    assert policy.observe(False, 1.0) == 500
    assert policy.observe(False, 60.0) == 500
    assert policy.observe(True, 60.1) == 20
    assert policy.observe(False, 60.5) == 20
    assert policy.observe(False, 61.2) == 500


@given(st.lists(st.tuples(st.booleans(), st.floats(0, 5)), max_size=50))
def test_a_poll_with_records_always_gets_the_short_wait_and_idle_needs_a_quiet_second(polls):
    policy = FetchWaitPolicy(busy_ms=20, idle_ms=500, idle_after_seconds=1.0)
    now, last_records = 0.0, None
    for got, step in polls:
        now += step
        wait = policy.observe(got, now)
        if last_records is None:
            last_records = now  # the first poll starts the clock
        if got:
            last_records = now
            assert wait == 20
        else:
            assert wait == (500 if now - last_records >= 1.0 else 20)


def test_aiokafka_fetchers_still_read_the_wait_from_the_attribute_set():
    fetcher_init = Fetcher.__init__.__code__
    assert "fetch_max_wait_ms" in fetcher_init.co_varnames
    source = Path(Fetcher.__init__.__code__.co_filename).read_text()
    assert f"self.{FETCHER_WAIT_ATTRIBUTE} = fetch_max_wait_ms" in source
    assert f"self.{FETCHER_WAIT_ATTRIBUTE}," in source  # read again for every fetch request built


async def test_a_consumer_without_a_fetcher_is_left_alone():
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")
    assert apply(consumer, 500) is False


def test_every_consumer_of_the_platform_wakes_its_idle_fetcher_once_a_second():
    """aiokafka's fetcher looks at its partitions every ``consumer_timeout_ms`` when nothing else woke
    it (200 ms by default): each consumer the platform builds passes the longer timeout, and aiokafka
    still takes it as the fetcher's wait."""
    platform = Path(fetch_wait.__file__).parent
    built = {
        path.name: path.read_text().count("AIOKafkaConsumer(")
        for path in platform.glob("*.py")
        if "AIOKafkaConsumer(" in path.read_text()
    }
    assert set(built) == {"consuming.py", "tailing.py", "lanes.py", "offset_clients.py"}, built
    for name, count in built.items():
        assert (platform / name).read_text().count("consumer_timeout_ms=FETCHER_TIMEOUT_MS") == count, name
    source = Path(AIOKafkaConsumer.__init__.__code__.co_filename).read_text()
    assert "fetcher_timeout=self._consumer_timeout" in source
    assert FETCHER_TIMEOUT_MS == 1000
