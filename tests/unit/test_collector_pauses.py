"""``millrace_gc_pause_seconds``: every collection of the interpreter's garbage collector is timed by
generation while a service runs, exported as a cumulative histogram, and nothing is left hooked into
the collector once it stops."""

from __future__ import annotations

import gc
from itertools import count

from millrace_common.platform.metrics import CollectorPauses
from prometheus_client import CollectorRegistry, generate_latest


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def ticking(step: float):
    """A clock that moves ``step`` seconds at every reading: each collection lasts exactly ``step``."""
    ticks = count(0.0, step)
    return lambda: next(ticks)


def test_a_full_collection_is_counted_with_the_time_it_stopped_the_process():
    registry = CollectorRegistry()
    with CollectorPauses(registry, clock=ticking(0.25)).observing():
        gc.collect(2)
    assert value(registry, "millrace_gc_pause_seconds_count", generation="2") == 1
    assert value(registry, "millrace_gc_pause_seconds_sum", generation="2") == 0.25
    assert value(registry, "millrace_gc_pause_seconds_bucket", generation="2", le="0.1") == 0
    assert value(registry, "millrace_gc_pause_seconds_bucket", generation="2", le="0.25") == 1  # le: at most
    assert value(registry, "millrace_gc_pause_seconds_bucket", generation="2", le="+Inf") == 1
    assert value(registry, "millrace_gc_pause_seconds_count", generation="0") == 0


def test_young_collections_are_counted_apart_from_full_ones_and_the_buckets_add_up():
    registry = CollectorRegistry()
    with CollectorPauses(registry, clock=ticking(0.003)).observing():
        gc.collect(0)
        gc.collect(1)
        gc.collect(0)
    assert value(registry, "millrace_gc_pause_seconds_count", generation="0") == 2
    assert value(registry, "millrace_gc_pause_seconds_count", generation="1") == 1
    assert value(registry, "millrace_gc_pause_seconds_count", generation="2") == 0
    assert round(value(registry, "millrace_gc_pause_seconds_sum", generation="0"), 9) == 0.006
    assert value(registry, "millrace_gc_pause_seconds_bucket", generation="0", le="0.0025") == 0
    assert value(registry, "millrace_gc_pause_seconds_bucket", generation="0", le="0.005") == 2
    assert value(registry, "millrace_gc_pause_seconds_bucket", generation="0", le="1.0") == 2
    assert b"# TYPE millrace_gc_pause_seconds histogram" in generate_latest(registry)


def test_nothing_stays_hooked_into_the_collector_after_the_service_stops():
    registry = CollectorRegistry()
    pauses = CollectorPauses(registry)
    before = list(gc.callbacks)
    try:
        with pauses.observing():
            assert pauses in gc.callbacks
            raise RuntimeError("the service failed")
    except RuntimeError:
        pass
    assert gc.callbacks == before
    gc.collect()
    assert value(registry, "millrace_gc_pause_seconds_count", generation="2") == 0
