"""``millrace_gc_pause_seconds``: every collection of the interpreter's garbage collector is timed by
generation while a service runs, and nothing is left hooked into the collector once it stops."""

from __future__ import annotations

import gc

from millrace_common.platform.metrics import CollectorPauses
from prometheus_client import CollectorRegistry


def sample(registry: CollectorRegistry, name: str, generation: str) -> float:
    return registry.get_sample_value(name, {"generation": generation}) or 0.0


def test_a_full_collection_is_counted_with_the_time_it_stopped_the_process():
    registry = CollectorRegistry()
    ticks = iter([10.0, 10.25])
    pauses = CollectorPauses(registry, clock=lambda: next(ticks))
    with pauses.observing():
        gc.collect(2)
    assert sample(registry, "millrace_gc_pause_seconds_count", "2") == 1
    assert sample(registry, "millrace_gc_pause_seconds_sum", "2") == 0.25
    assert (
        registry.get_sample_value("millrace_gc_pause_seconds_bucket", {"generation": "2", "le": "0.25"}) == 1
    )
    assert (
        registry.get_sample_value("millrace_gc_pause_seconds_bucket", {"generation": "2", "le": "0.1"}) == 0
    )


def test_young_collections_are_counted_apart_from_full_ones():
    registry = CollectorRegistry()
    with CollectorPauses(registry).observing():
        gc.collect(0)
        gc.collect(1)
    assert sample(registry, "millrace_gc_pause_seconds_count", "0") == 1
    assert sample(registry, "millrace_gc_pause_seconds_count", "1") == 1
    assert sample(registry, "millrace_gc_pause_seconds_count", "2") == 0
    assert sample(registry, "millrace_gc_pause_seconds_sum", "0") >= 0


def test_nothing_stays_hooked_into_the_collector_after_the_service_stops():
    pauses = CollectorPauses(CollectorRegistry())
    before = list(gc.callbacks)
    try:
        with pauses.observing():
            assert pauses in gc.callbacks
            raise RuntimeError("the service failed")
    except RuntimeError:
        pass
    assert gc.callbacks == before
