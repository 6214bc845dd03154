"""The periodic lookups of a producer's outbox rows (the backlog gauge, the live relay's sweep) go
through the producer index whatever the outbox's statistics say, without parallel workers.

The outbox is a queue: analyzed at a peak, its statistics promise tens of thousands of rows when a
few are left, and its heap keeps its peak's size. Planned on such statistics, the gauge read the
whole heap with two parallel workers (up to 46 ms every 5 s per gauge in the end-to-end bench)."""

from __future__ import annotations

import json

import psycopg
import pytest
from millrace_common.platform.live_relay import _SWEEP
from millrace_common.platform.outbox import BACKLOG, INDEX_PATHS_ONLY, PLAIN_INDEX_SCANS
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
            connection.execute(text(INDEX_PATHS_ONLY))
            connection.execute(text(PLAIN_INDEX_SCANS))
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


def test_the_live_relays_sweep_finds_orphans_through_the_producer_index(infra: Infra, namespace: str) -> None:
    url = infra.database_url.replace("+psycopg", "")
    with psycopg.connect(url, options=f"-csearch_path={namespace}") as connection:
        connection.execute("alter table outbox set (autovacuum_enabled = false)")
        connection.execute(
            "insert into outbox (producer, topic, key, value, created_at) select 'orchestrator@peak', 't',"
            " 'k', 'v', now() - interval '1 minute' from generate_series(1, %s)",
            (PEAK,),
        )
        connection.commit()
        connection.execute("analyze outbox")
        connection.execute("delete from outbox")
        for producer in ("orchestrator", "orchestrator@gone", "orchestrator@live", "orchestratorx"):
            connection.execute(
                "insert into outbox (producer, topic, key, value, created_at)"
                " values (%s, 't', 'k', 'v', now() - interval '1 minute')",
                (producer,),
            )
        ids = dict(connection.execute("select producer, id from outbox").fetchall())
        connection.commit()
        parameters = {
            "name": "orchestrator",
            "instances": "orchestrator@%",
            "held": f"{{{ids['orchestrator@live']}}}",
            "age": 30.0,
            "limit": 100,
        }
        connection.execute(INDEX_PATHS_ONLY)
        connection.execute(PLAIN_INDEX_SCANS)
        (plan,) = connection.execute(
            f"explain (analyze, buffers, format json) {_SWEEP}", parameters
        ).fetchone()[0]
        connection.rollback()
        connection.execute(INDEX_PATHS_ONLY)
        connection.execute(PLAIN_INDEX_SCANS)
        swept = connection.execute(_SWEEP, parameters).fetchall()
        connection.rollback()
    assert sorted(row[0] for row in swept) == sorted([ids["orchestrator"], ids["orchestrator@gone"]]), (
        "the plain name's and a dead instance's rows, not the held row nor another producer's"
    )
    kinds = [node["Node Type"] for node in nodes(plan["Plan"])]
    assert not {"Seq Scan", "Gather", "Bitmap Heap Scan"} & set(kinds), json.dumps(plan, indent=1)
