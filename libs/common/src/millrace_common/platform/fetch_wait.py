"""How long a consumer's fetches wait at the broker: long when a fetch holds every partition the
consumer reads from that broker, short when one is left out.

A fetch is answered as soon as one of its partitions has data (``fetch.min.bytes`` 1), so records
reaching a partition the fetch holds end its wait at once, however long it may be. aiokafka leaves a
partition out of a fetch while its records wait in the buffer past its prefetch backoff (100 ms: a
handler busy longer, a poller whose own buffer is full) and while it is paused (a full lane); data
arriving there waits for the fetch in flight to end, since aiokafka sends a broker one fetch at a
time. So each fetch is given its wait as it is built (:func:`install`):
``MILLRACE_KAFKA_FULL_FETCH_MAX_WAIT_MS`` (1 s) when it holds every partition of its broker,
``MILLRACE_KAFKA_FETCH_MAX_WAIT_MS`` (20 ms) when it does not, or when a partition has no known
leader (it may turn out to be on that broker).

What a long fetch still holds up is what the client changes while it is out, and the requests that
share its connection (the broker answers a connection's requests one at a time): a seek (the batch
consumer's retry after a failed handler, 1 s later), an offset lookup, a metadata or coordinator
lookup, a rebalance's first fetch, a leader moving onto that broker. Each waits at most one long
wait, which is why it is 1 s, the batch consumer's retry time, and not the 2 s an idle consumer
waited before. Heartbeats and offset commits go on a connection of their own.

The wait was chosen by time before: 20 ms while records had come within the last second, 2 s after a
quiet second. A consumer fed every few tens of milliseconds (a for_each's results, a trickle of
events) then sent a fetch every 20 ms that came back empty, each costing the broker and the client a
request's work: one for_each item at a time cost about a fifth more CPU (docs/benchmarks.md).

aiokafka builds its fetches in its fetcher's ``_get_actions_per_node`` and has no public way to set
a fetch's wait: :func:`install` wraps that method and sets the built request's ``_max_wait_ms``;
``tests/unit/test_fetch_wait.py`` fails if a new aiokafka renames either.
"""

from __future__ import annotations

import logging
from collections import defaultdict
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
    failed = False

    def actions(assignment: Any) -> tuple[Any, ...]:
        nonlocal failed
        built = build(assignment)
        if failed:
            return built
        try:
            requests, invalid_metadata = built[0], built[3]
            if not requests or invalid_metadata:
                return built  # each request keeps the short wait it was built with
            wanted: dict[Any, set[tuple[str, int]]] = defaultdict(set)
            for tp in assignment.tps:
                wanted[replica_of(tp)].add((tp.topic, tp.partition))
            waits = [
                fetch_wait_ms(
                    wanted[node_id],
                    ((topic, part[0]) for topic, parts in request.topics for part in parts),
                    partial_ms=partial_ms,
                    full_ms=full_ms,
                )
                for node_id, request in requests
            ]
        except Exception:
            # Never let this stop aiokafka's fetcher: from now on its fetches keep the short wait.
            failed = True
            log.exception("the fetch wait could not be chosen; fetches keep their short wait")
            return built
        for (_node_id, request), wait in zip(requests, waits, strict=True):
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
