"""How long a consumer's fetches wait at the broker: short while records flow, long once it is idle.

A fetch is answered as soon as one of its partitions has data (``fetch.min.bytes`` 1), so an idle
consumer's long fetch costs no latency for the first record that arrives: every partition is in it.
While records flow it is different: aiokafka sends a broker no fetch while records of its partitions
wait in the buffer, for up to its prefetch backoff (100 ms); past that (a handler busy longer, a
paused lane) a fetch goes without those partitions, and data arriving there waits for that fetch to
end, so busy consumers keep the short wait (``MILLRACE_KAFKA_FETCH_MAX_WAIT_MS``). An idle one that
kept it would send a fetch every 20 ms for nothing: a few per cent of a core per consumer, in every
process, all day. So after ``idle_after_seconds`` without records the wait grows to
``MILLRACE_KAFKA_IDLE_FETCH_MAX_WAIT_MS``, and the first poll with records brings it back.

aiokafka reads the wait from its fetcher for every fetch it builds but has no public way to change it
after start: :func:`apply` sets the fetcher's attribute, and ``tests/unit/test_fetch_wait.py`` fails
if a new aiokafka renames it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer

from millrace_common.platform.settings import ServiceSettings

log = logging.getLogger(__name__)

FETCHER_WAIT_ATTRIBUTE = "_fetch_max_wait_ms"
IDLE_POLL_MS = 1000
"""How long an idle consumer's poll waits for records (records end the wait at once)."""
FETCHER_TIMEOUT_MS = 1000
"""aiokafka's ``consumer_timeout_ms``: how often its background fetcher looks at its partitions when
nothing else woke it (default 200 ms). A fetch answered, records consumed, a seek, a resume, a
rebalance and a metadata update it asked for each wake it at once, so the timeout bounds only an
idle consumer's needless looks, each a walk over its partitions in Python: at 200 ms, five a second
in every consumer of every service; at 1 s the five idle services wake a quarter less often
(docs/benchmarks.md). "At once" needs :mod:`millrace_common.platform.fetcher_mend`: without it a fetch
that ends as records are taken can leave the fetcher with nothing in flight for this whole timeout."""


@dataclass
class FetchWaitPolicy:
    """Pure: what the fetch wait should be, given when records last arrived."""

    busy_ms: int
    idle_ms: int
    idle_after_seconds: float = 1.0
    _last_records_at: float | None = field(default=None, repr=False)

    def observe(self, got_records: bool, now: float) -> int:
        """The wait to use after a poll at ``now`` that did (or did not) return records."""
        if got_records or self._last_records_at is None:
            self._last_records_at = now
        if got_records:
            return self.busy_ms
        return self.idle_ms if now - self._last_records_at >= self.idle_after_seconds else self.busy_ms


class AdaptiveFetchWait:
    """Applies a :class:`FetchWaitPolicy` to a started consumer after each of its polls."""

    def __init__(self, consumer: AIOKafkaConsumer, policy: FetchWaitPolicy) -> None:
        self._consumer = consumer
        self._policy = policy
        self._current = policy.busy_ms

    @property
    def idle(self) -> bool:
        """Whether the consumer has had no records for the policy's quiet time."""
        return self._current != self._policy.busy_ms

    def after_poll(self, got_records: bool, now: float) -> None:
        wanted = self._policy.observe(got_records, now)
        if wanted != self._current:
            self._current = wanted
            apply(self._consumer, wanted)


def adaptive_fetch_wait(consumer: AIOKafkaConsumer, settings: ServiceSettings) -> AdaptiveFetchWait:
    """The settings' policy (``kafka_fetch_max_wait_ms`` busy, ``kafka_idle_fetch_max_wait_ms`` idle)."""
    policy = FetchWaitPolicy(settings.kafka_fetch_max_wait_ms, settings.kafka_idle_fetch_max_wait_ms)
    return AdaptiveFetchWait(consumer, policy)


def apply(consumer: AIOKafkaConsumer, wait_ms: int) -> bool:
    """Set the wait of the consumer's next fetches; False (and nothing changed) when the consumer has
    no fetcher yet or aiokafka no longer has the attribute."""
    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is None or not hasattr(fetcher, FETCHER_WAIT_ATTRIBUTE):
        return False
    setattr(fetcher, FETCHER_WAIT_ATTRIBUTE, wait_ms)
    return True
