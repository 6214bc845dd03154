"""How long a consumer's fetches wait at the broker: long when a fetch holds every partition the
consumer reads from that broker, short when one is left out.

A fetch is answered as soon as one of its partitions has data (``fetch.min.bytes`` 1), so a fetch
that holds every partition costs no latency however long it may wait: the first record to arrive
ends it. aiokafka leaves a partition out of a fetch while its records wait in the buffer past its
prefetch backoff (100 ms: a handler busy longer, a poller whose own buffer is full), while it is
paused (a full lane) and while its position is being reset (a seek to the end); data arriving there
waits for the fetch in flight to end. So each fetch is given its wait as it is built
(:func:`install`): ``MILLRACE_KAFKA_FULL_FETCH_MAX_WAIT_MS`` (2 s) when it holds every partition of
its broker, ``MILLRACE_KAFKA_FETCH_MAX_WAIT_MS`` (20 ms) when it does not.

The wait was chosen by time before: 20 ms while records had come within the last second, 2 s after a
quiet second. A consumer fed every few tens of milliseconds (a for_each's results, a paced stream)
then sent a fetch every 20 ms that came back empty, each costing the broker and the client a
request's work: at one item every 60 ms, about a fifth of the CPU per item (docs/benchmarks.md).

aiokafka builds its fetches in its fetcher's ``_get_actions_per_node`` and has no public way to set
a fetch's wait: :func:`install` wraps that method and sets the built request's ``_max_wait_ms``;
``tests/unit/test_fetch_wait.py`` fails if a new aiokafka renames either.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer

log = logging.getLogger(__name__)

BUILD_ATTRIBUTE = "_get_actions_per_node"
"""The fetcher's method that builds each pass's fetch requests, one per broker."""
REPLICA_ATTRIBUTE = "_select_read_replica"
"""The fetcher's method that says which broker a partition is fetched from."""
REQUEST_WAIT_ATTRIBUTE = "_max_wait_ms"
"""The wait a built ``FetchRequest`` sends."""
_INSTALLED = "_millrace_fetch_wait"

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


def fetch_wait_ms(
    wanted: Iterable[tuple[str, int]], fetched: Iterable[tuple[str, int]], *, partial_ms: int, full_ms: int
) -> int:
    """Pure: the wait of a fetch holding ``fetched`` (topic, partition) pairs, for a consumer that reads
    ``wanted`` from the same broker: ``full_ms`` when none is left out, else ``partial_ms``."""
    return full_ms if set(wanted) <= set(fetched) else partial_ms


def install(consumer: AIOKafkaConsumer, *, partial_ms: int, full_ms: int) -> bool:
    """Give each fetch of a started consumer its wait (once); False, and a warning, when it has no
    fetcher or aiokafka no longer has what this relies on (its fetches then keep ``partial_ms``, the
    wait the consumer was made with)."""
    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is None or not all(hasattr(fetcher, name) for name in (BUILD_ATTRIBUTE, REPLICA_ATTRIBUTE)):
        log.warning("aiokafka's fetcher has changed: fetches keep their short wait")
        return False
    if getattr(fetcher, _INSTALLED, False):
        return True
    setattr(
        fetcher, BUILD_ATTRIBUTE, _waiting(fetcher, getattr(fetcher, BUILD_ATTRIBUTE), partial_ms, full_ms)
    )
    setattr(fetcher, _INSTALLED, True)
    return True


def _waiting(fetcher: Any, build: Callable[[Any], tuple[Any, ...]], partial_ms: int, full_ms: int) -> Any:
    replica_of = getattr(fetcher, REPLICA_ATTRIBUTE)

    def actions(assignment: Any) -> tuple[Any, ...]:
        built = build(assignment)
        requests = built[0]
        if requests:
            brokers = {tp: replica_of(tp) for tp in assignment.tps}
            for node_id, request in requests:
                wanted = ((tp.topic, tp.partition) for tp, node in brokers.items() if node == node_id)
                fetched = ((topic, part[0]) for topic, parts in request.topics for part in parts)
                wait = fetch_wait_ms(wanted, fetched, partial_ms=partial_ms, full_ms=full_ms)
                setattr(request, REQUEST_WAIT_ATTRIBUTE, wait)
        return built

    return actions


@dataclass
class Quiet:
    """Pure: whether a consumer has had no records for ``after_seconds``, from what its polls got (a
    quiet consumer's polls wait long; records end a poll's wait at once)."""

    after_seconds: float = 1.0
    _last_records_at: float | None = field(default=None, repr=False)
    idle: bool = field(default=False, init=False)

    def observe(self, got_records: bool, now: float) -> bool:
        """Whether the consumer is idle after a poll at ``now`` that did (or did not) return records."""
        if got_records or self._last_records_at is None:
            self._last_records_at = now
        self.idle = not got_records and now - self._last_records_at >= self.after_seconds
        return self.idle
