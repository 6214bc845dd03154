"""``update_write`` against a real PostgreSQL whose statistics are stale: a table analyzed while it
was nearly empty and grown by 20,000 rows since (a new system, a burst after retention pruned) is
updated by probing its key index for each row, not by reading every row of the table.

The orchestrator updates each run's ``runs`` row through ``update_write``. Planned with ``runs``
believed tiny, the update joined its one row to the whole table (a hash join over a full index scan),
and every node result of a loop in the end-to-end bench cost PostgreSQL 7 ms instead of 1."""

from __future__ import annotations

import json
import uuid

import pytest
from millrace_common.platform.bulk import update_write
from millrace_common.platform.tables import runs
from sqlalchemy import create_engine, text

from tests.support.infra import Infra

pytestmark = pytest.mark.integration

ROWS = 20_000


def blocks_read(plan: dict) -> int:
    """Shared blocks the statement touched (hit or read), from ``EXPLAIN (BUFFERS, FORMAT JSON)``."""
    top = plan["Plan"]
    return int(top.get("Shared Hit Blocks", 0)) + int(top.get("Shared Read Blocks", 0))


def test_an_update_by_key_reads_only_its_rows_when_the_statistics_say_the_table_is_tiny(
    infra: Infra, namespace: str
) -> None:
    engine = create_engine(infra.database_url, connect_args={"options": f"-csearch_path={namespace}"})
    try:
        with engine.begin() as connection:
            connection.execute(text("alter table runs set (autovacuum_enabled = false)"))
        with engine.begin() as connection:
            connection.execute(text("analyze runs"))  # statistics of an empty table
        with engine.begin() as connection:
            connection.execute(
                text(
                    "insert into runs (run_id, tenant_id, workflow_id, workflow_version, status, trigger,"
                    " started_at, last_seq) select gen_random_uuid(), 'tenant-a', gen_random_uuid(), 1,"
                    " 'running', '{}', now(), 1 from generate_series(1, :rows)"
                ),
                {"rows": ROWS},
            )
            target = connection.execute(text("select run_id from runs limit 1")).scalar_one()

        write = update_write(runs, "run_id", [{"run_id": target, "status": "succeeded", "last_seq": 2}])
        with engine.begin() as connection:
            (plan,) = connection.execute(
                text(f"explain (analyze, buffers, format json) {write.sql}"), write.params
            ).scalar_one()
            status = connection.execute(
                text("select status, last_seq from runs where run_id = :id"), {"id": target}
            ).one()
        assert tuple(status) == ("succeeded", 2), "the row was updated"
        touched = blocks_read(plan)
        assert touched < 100, (
            f"updating one row touched {touched} blocks of a {ROWS}-row table:\n{json.dumps(plan, indent=1)}"
        )
        untouched = uuid.uuid4()
        write = update_write(runs, "run_id", [{"run_id": untouched, "status": "failed", "last_seq": 3}])
        with engine.begin() as connection:
            assert connection.execute(text(write.sql), write.params).rowcount == 0, "no row, no update"
    finally:
        engine.dispose()
