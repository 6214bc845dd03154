"""The end-to-end bench's clean-up against a real PostgreSQL: removing its tenant deletes the tenant's
rows and vacuums the tables they were deleted from, so no dead rows are left for autovacuum to clean
during a next run of the bench."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from bench.e2e_system import RunLog
from tests.support.infra import Infra

pytestmark = pytest.mark.integration


def table_state(log: RunLog, namespace: str, table: str) -> tuple[int, object]:
    with log.engine.connect() as connection:
        row = connection.execute(
            text(
                "select n_dead_tup, last_vacuum from pg_stat_user_tables"
                " where schemaname = :schema and relname = :table"
            ),
            {"schema": namespace or "public", "table": table},
        ).one()
        return int(row[0]), row[1]


def test_removing_the_bench_tenant_leaves_no_dead_rows_behind(infra: Infra, namespace: str) -> None:
    log = RunLog(infra, namespace)
    try:
        with log.engine.begin() as connection:
            for tenant in ("bench-gone", "bench-stays"):
                connection.execute(
                    text("insert into tenants (id, name, created_at) values (:t, :name, now())"),
                    {"t": tenant, "name": tenant},
                )
                connection.execute(
                    text(
                        "insert into pipelines (tenant_id, id, name, created_at)"
                        " select :t, 'p' || n, 'p' || n, now() from generate_series(1, 500) n"
                    ),
                    {"t": tenant},
                )
        assert table_state(log, namespace, "pipelines")[1] is None, "not vacuumed before"

        removed = log.remove_tenant("bench-gone")

        assert removed == 501, "the tenant's 500 pipelines and the tenant itself"
        with log.engine.connect() as connection:
            left = connection.execute(text("select tenant_id, count(*) from pipelines group by 1")).all()
        assert left == [("bench-stays", 500)], "another tenant's rows stay"
        deadline = time.monotonic() + 10
        while (state := table_state(log, namespace, "pipelines")) and state[1] is None:
            assert time.monotonic() < deadline, "the table the rows were removed from was not vacuumed"
            time.sleep(0.2)
        assert state[0] == 0, f"{state[0]} dead rows left behind"
    finally:
        log.close()
