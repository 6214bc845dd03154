"""The periodic lookup of a producer's outbox rows by the backlog gauge goes
through the producer index whatever the outbox's statistics say, without parallel workers.

The outbox is a queue: analyzed at a peak, its statistics promise tens of thousands of rows when a
few are left, and its heap keeps its peak's size. Planned on such statistics, the gauge read the
whole heap with two parallel workers (up to 46 ms every 5 s per gauge in the end-to-end bench)."""

from __future__ import annotations

import json

import pytest
from millrace_common.platform.outbox import BACKLOG, PLAIN_INDEX_SCANS_ONLY
from sqlalchemy import create_engine, text

from tests.support.infra import Infra

pytestmark = pytest.mark.integration

PEAK = 30_000


def nodes(plan: dict) -> list[dict]:
    found = [plan]
    for child in plan.get("Plans", []):
        found += nodes(child)
    return found


def test_the_backlog_is_read_through_the_producer_index_after_a_peak_the_statistics_remember(
    infra: Infra, namespace: str
) -> None:
    engine = create_engine(infra.database_url, connect_args={"options": f"-csearch_path={namespace}"})
    row = "(:producer, 't', 'k', 'v', now())"
    try:
        with engine.begin() as connection:
            connection.execute(text("alter table outbox set (autovacuum_enabled = false)"))
            connection.execute(
                text(
                    "insert into outbox (producer, topic, key, value, created_at)"
                    " select 'orchestrator@peak', 't', 'k', 'v', now() from generate_series(1, :rows)"
                ),
                {"rows": PEAK},
            )
        with engine.begin() as connection:
            connection.execute(text("analyze outbox"))  # the peak's statistics
            connection.execute(text("delete from outbox"))
            for producer in (
                "orchestrator",
                "orchestrator",
                "orchestrator@b",
                "orchestratorx",
                "orchestrator-x",
            ):
                connection.execute(
                    text(f"insert into outbox (producer, topic, key, value, created_at) values {row}"),
                    {"producer": producer},
                )
        parameters = {"producer": "orchestrator", "instances": "orchestrator@%"}
        with engine.begin() as connection:
            connection.execute(text(PLAIN_INDEX_SCANS_ONLY))
            assert connection.execute(text("show jit")).scalar_one() == "off"
            (plan,) = connection.execute(
                text(f"explain (analyze, buffers, format json) {BACKLOG}"), parameters
            ).scalar_one()
            count, oldest = connection.execute(text(BACKLOG), parameters).one()
        assert count == 3, "its own rows and its instances' rows, not another producer's"
        assert oldest is not None
        kinds = [node["Node Type"] for node in nodes(plan["Plan"])]
        shown = json.dumps(plan, indent=1)
        assert "Seq Scan" not in kinds and "Gather" not in kinds, shown
        assert "Bitmap Heap Scan" not in kinds, f"plain index scans mark deleted rows' entries:\n{shown}"
        conditions = " ".join(node.get("Index Cond", "") for node in nodes(plan["Plan"]))
        assert "~>=~" in conditions, f"the like prefix is a condition of the pattern index:\n{shown}"
    finally:
        engine.dispose()
