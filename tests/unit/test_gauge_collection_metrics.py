"""Gauges read on a timer: a failing source is flagged and does not keep the others from being read."""

from __future__ import annotations

import logging

import pytest
from millrace_common.platform.gauges import CallbackCollector, GaugeCollection
from millrace_common.platform.metrics import OTHER, BoundedLabel, PlatformGauges
from prometheus_client import CollectorRegistry

pytestmark = pytest.mark.unit


def failing_flag(registry: CollectorRegistry, collector: str) -> float | None:
    return registry.get_sample_value("millrace_gauge_collection_failing", {"collector": collector})


async def test_a_failing_collector_is_flagged_logged_once_and_the_others_still_run(caplog):
    registry = CollectorRegistry()
    gauges = PlatformGauges(registry)
    broken = {"now": True}
    reads: list[str] = []

    async def database() -> None:
        reads.append("database")
        if broken["now"]:
            raise ConnectionError("database away")

    async def kafka() -> None:
        reads.append("kafka")

    collection = GaugeCollection(
        [CallbackCollector("database", database), CallbackCollector("kafka", kafka)],
        gauges,
        interval_seconds=1,
    )
    with caplog.at_level(logging.INFO, logger="millrace_common.platform.gauges"):
        await collection.collect_once()
        await collection.collect_once()
        assert failing_flag(registry, "database") == 1
        assert failing_flag(registry, "kafka") == 0
        assert reads == ["database", "kafka", "database", "kafka"]
        assert [r.getMessage() for r in caplog.records] == ["collecting gauges failed"]

        broken["now"] = False
        await collection.collect_once()

    assert failing_flag(registry, "database") == 0
    assert [r.getMessage() for r in caplog.records][-1] == "collecting gauges works again"


def test_bounded_labels_fold_newcomers_past_the_limit_into_other():
    label = BoundedLabel(2)

    assert [label(v) for v in ("a", "b", "c", "a", "d")] == ["a", "b", OTHER, "a", OTHER]
