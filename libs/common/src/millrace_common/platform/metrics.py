"""Prometheus metrics shared by every service, on a registry the service's bootstrap creates.

Every metric is catalogued in ``docs/metrics.md``. Labels stay bounded: never a run id, never free
user input; values that users choose (tenant ids, model names, trigger kinds) go through a
:class:`BoundedLabel`, which folds anything past its limit into ``other``.
"""

from __future__ import annotations

import bisect
import gc
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import accumulate

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily

OTHER = "other"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:/@+-]")


class BoundedLabel:
    """Label values as given, up to ``limit`` distinct ones per process; later newcomers read ``other``.

    A value is also cut to ``max_length`` characters and stripped of characters outside a safe set,
    so a label never carries a whole prompt, URL or message.
    """

    def __init__(self, limit: int, *, max_length: int = 64) -> None:
        self._limit = limit
        self._max_length = max_length
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._given: dict[str, str] = {}  # text values already labelled, up to ``limit`` of them

    def __call__(self, value: object) -> str:
        if not isinstance(value, str):
            return self._label(value)
        known = self._given.get(value)
        if known is not None:
            return known
        text = self._label(value)
        if len(self._given) < self._limit and text != OTHER:
            self._given[value] = text
        return text

    def _label(self, value: object) -> str:
        text = _UNSAFE.sub("_", str(value if value is not None else ""))[: self._max_length] or "none"
        with self._lock:
            if text in self._seen:
                return text
            if len(self._seen) >= self._limit:
                return OTHER
            self._seen.add(text)
            return text


class ConsumerMetrics:
    """Messages handled and dead-lettered per topic and consumer group."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.handled = Counter(
            "millrace_messages_handled_total",
            "Kafka messages handled, by topic, consumer group and outcome",
            ["topic", "group", "outcome"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "millrace_dead_letters_total",
            "Messages sent to a dead-letter topic, by source topic and reason (undecodable, failed, "
            "rejected)",
            ["topic", "reason"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "millrace_consumer_batch_seconds",
            "Time to handle one polled batch, by topic",
            ["topic"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=registry,
        )


class PlatformGauges:
    """What every service reports about its own plumbing: consumer lag and its outbox."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.consumer_lag = Gauge(
            "millrace_consumer_lag",
            "Messages on a topic not yet committed by a consumer group (end offset minus committed offset, "
            "summed over partitions)",
            ["topic", "group"],
            registry=registry,
        )
        self.outbox_backlog = Gauge(
            "millrace_outbox_backlog",
            "Outbox rows written but not yet published, by producing service",
            ["producer"],
            registry=registry,
        )
        self.outbox_oldest_age = Gauge(
            "millrace_outbox_oldest_age_seconds",
            "Age of the oldest unpublished outbox row (0 when none), by producing service",
            ["producer"],
            registry=registry,
        )
        self.collect_errors = Gauge(
            "millrace_gauge_collection_failing",
            "1 while the last collection of a database or Kafka gauge failed, by collector",
            ["collector"],
            registry=registry,
        )


GC_PAUSE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class CollectorPauses:
    """``millrace_gc_pause_seconds{generation}``: how long each of the interpreter's garbage
    collections stopped the process (the event loop and every thread with it). A full collection
    scans every live object, so in a process holding many it is a stall every request and message in
    flight waits out; counted, it is told apart from a slow database or broker.
    ``gc.callbacks`` calls it at the start and the end of each collection; :meth:`observing`
    installs it for as long as the service runs. It counts into plain lists and is read as a collector
    of the registry: a collection can start while any code holds a metric's lock (a scrape reading
    values included), so the callback must take none (prometheus/client_python#363)."""

    def __init__(self, registry: CollectorRegistry, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._started: float | None = None
        self._counts = [[0] * (len(GC_PAUSE_BUCKETS) + 1) for _ in range(3)]  # the last: over 1 s
        self._sums = [0.0, 0.0, 0.0]
        registry.register(self)

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = self._clock()
        elif self._started is not None:
            took = self._clock() - self._started
            generation = info["generation"]
            self._counts[generation][bisect.bisect_left(GC_PAUSE_BUCKETS, took)] += 1
            self._sums[generation] += took
            self._started = None

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(
            "millrace_gc_pause_seconds",
            "Garbage collections of the service's interpreter and how long each stopped it, by generation "
            "(2: a full collection)",
            labels=["generation"],
        )
        bounds = [*(str(b) for b in GC_PAUSE_BUCKETS), "+Inf"]
        for generation in range(3):
            counts, total = list(self._counts[generation]), self._sums[generation]
            family.add_metric([str(generation)], list(zip(bounds, accumulate(counts), strict=True)), total)
        yield family

    @contextmanager
    def observing(self) -> Iterator[None]:
        gc.callbacks.append(self)
        try:
            yield
        finally:
            gc.callbacks.remove(self)
