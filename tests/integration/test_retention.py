"""Retention against the real PostgreSQL: the orchestrator's pass prunes finished runs older than their
tenant keeps them (with their events, node log and timers) and old processed-message claims, exports
first when the tenant asks, and leaves alone everything a live run needs: a running run however old,
a run retried back to running, a run the orchestrator holds locked, a tenant's runs it may not export.
The node runner's and the approval service's statements likewise."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from millrace_approval.adapters.retention import statements as approval_statements
from millrace_common.platform.db import create_engine as create_async_engine
from millrace_common.platform.pg import DirectConnections
from millrace_common.platform.pruning import prune_batches
from millrace_node_runner.adapters.retention import statements as runner_statements
from millrace_orchestrator.adapters.retention import RunLogRetention
from millrace_orchestrator.adapters.run_export import ExportFolder
from millrace_orchestrator.service_layer.retention import RunRetention
from sqlalchemy import Engine, create_engine, text

from tests.support.infra import Infra

pytestmark = pytest.mark.integration

NOW = datetime(2027, 3, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def db(infra: Infra, namespace: str) -> Iterator[Engine]:
    engine = create_engine(infra.database_url, connect_args={"options": f"-csearch_path={namespace}"})
    yield engine
    engine.dispose()


def add_run(
    db: Engine, tenant: str, *, status: str, ended_days_ago: float | None, started_days_ago: float = 400
) -> UUID:
    """A run with three events, two node rows and a timer, as the orchestrator would have left it."""
    run_id = uuid.uuid4()
    finished = None if ended_days_ago is None else NOW - ended_days_ago * DAY
    with db.begin() as connection:
        connection.execute(
            text(
                "insert into runs (run_id, tenant_id, workflow_id, workflow_version, status, trigger,"
                " started_at, finished_at, last_seq) values (:r, :t, :w, 1, :s, '{}', :started, :f, 3)"
            ),
            {
                "r": run_id,
                "t": tenant,
                "w": uuid.uuid4(),
                "s": status,
                "started": NOW - started_days_ago * DAY,
                "f": finished,
            },
        )
        for seq in (1, 2, 3):
            payload = {"run_id": str(run_id), "seq": seq, "type": f"event.{seq}"}
            connection.execute(
                text(
                    "insert into run_events (run_id, seq, event_id, type, payload, recorded_at)"
                    " values (:r, :seq, :e, :type, cast(:p as jsonb), :at)"
                ),
                {
                    "r": run_id,
                    "seq": seq,
                    "e": uuid.uuid4(),
                    "type": f"event.{seq}",
                    "p": json.dumps(payload),
                    "at": NOW - started_days_ago * DAY,
                },
            )
        for node_id in ("a", "b"):
            connection.execute(
                text(
                    "insert into node_executions (run_id, node_id, node_type, status, attempts)"
                    " values (:r, :n, 'set', 'succeeded', 1)"
                ),
                {"r": run_id, "n": node_id},
            )
        connection.execute(
            text(
                "insert into timers (timer_id, run_id, tenant_id, purpose, fire_at)"
                " values (:id, :r, :t, 'run_timeout', :at)"
            ),
            {"id": uuid.uuid4(), "r": run_id, "t": tenant, "at": NOW + DAY},
        )
    return run_id


def rows_of(db: Engine, run_id: UUID) -> dict[str, int]:
    with db.connect() as connection:
        return {
            table: connection.execute(
                text(f"select count(*) from {table} where run_id = :r"), {"r": run_id}
            ).scalar()
            for table in ("runs", "run_events", "node_executions", "timers")
        }


GONE = {"runs": 0, "run_events": 0, "node_executions": 0, "timers": 0}
KEPT = {"runs": 1, "run_events": 3, "node_executions": 2, "timers": 1}


def set_retention(db: Engine, tenant: str, days: int | None, export: bool) -> None:
    with db.begin() as connection:
        connection.execute(
            text("insert into tenant_retention values (:t, :d, :e, now())"),
            {"t": tenant, "d": days, "e": export},
        )


def retention(infra: Infra, namespace: str, *, export_to: Path | None, batch_runs: int = 50) -> RunRetention:
    connections = DirectConnections(infra.settings(namespace), size=1)
    return RunRetention(
        RunLogRetention(connections),
        lambda: NOW,
        default_keep=30 * DAY,
        processed_keep=8 * DAY,
        export=ExportFolder(export_to) if export_to else None,
        batch_runs=batch_runs,
        pause_seconds=0,
    )


async def test_finished_runs_past_their_tenants_retention_go_with_everything_they_left(
    infra: Infra, namespace: str, db: Engine, tenant: str
):
    old = add_run(db, tenant, status="completed", ended_days_ago=31)
    failed = add_run(db, tenant, status="failed", ended_days_ago=45)
    throttled = add_run(db, tenant, status="throttled", ended_days_ago=300)
    recent = add_run(db, tenant, status="completed", ended_days_ago=29)
    long_keeper = f"{tenant}-long"
    set_retention(db, long_keeper, 90, False)
    kept_longer = add_run(db, long_keeper, status="completed", ended_days_ago=60)
    past_its_own = add_run(db, long_keeper, status="cancelled", ended_days_ago=91)

    pruned = await retention(infra, namespace, export_to=None).prune()

    assert pruned.runs == 4
    for run_id in (old, failed, throttled, past_its_own):
        assert rows_of(db, run_id) == GONE
    for run_id in (recent, kept_longer):
        assert rows_of(db, run_id) == KEPT


async def test_nothing_a_live_run_needs_is_pruned(infra: Infra, namespace: str, db: Engine, tenant: str):
    running = add_run(db, tenant, status="running", ended_days_ago=None, started_days_ago=400)
    retried = add_run(db, tenant, status="running", ended_days_ago=200)  # ended, then retried
    short = f"{tenant}-short"
    set_retention(db, short, 1, False)
    within_redelivery = add_run(db, short, status="completed", ended_days_ago=5)
    held = add_run(db, tenant, status="completed", ended_days_ago=40)
    free = add_run(db, tenant, status="completed", ended_days_ago=40)

    with db.connect() as orchestrator:  # a writer holds one run's row, as the orchestrator's write does
        orchestrator.execute(text("select 1 from runs where run_id = :r for update"), {"r": held})
        pruned = await retention(infra, namespace, export_to=None).prune()
        orchestrator.rollback()

    assert pruned.runs == 1, "the held run was skipped, not waited for"
    assert rows_of(db, free) == GONE
    for run_id in (running, retried, within_redelivery, held):
        assert rows_of(db, run_id) == KEPT
    assert (await retention(infra, namespace, export_to=None).prune()).runs == 1, "the next pass takes it"
    assert rows_of(db, held) == GONE


async def test_many_runs_are_pruned_a_batch_at_a_time(infra: Infra, namespace: str, db: Engine, tenant: str):
    old = [add_run(db, tenant, status="completed", ended_days_ago=40 + n / 100) for n in range(23)]
    pruned = await retention(infra, namespace, export_to=None, batch_runs=5).prune()
    assert pruned.runs == 23
    assert all(rows_of(db, run_id) == GONE for run_id in old)


async def test_a_tenant_that_asks_for_an_export_has_its_runs_written_to_disk_before_they_go(
    infra: Infra, namespace: str, db: Engine, tenant: str, tmp_path: Path
):
    set_retention(db, tenant, None, True)
    old = sorted([add_run(db, tenant, status="completed", ended_days_ago=40) for _ in range(3)], key=str)

    kept = await retention(infra, namespace, export_to=None).prune()
    assert kept.runs == 0 and kept.skipped_sweeps == 1, "no export folder: nothing of the tenant's goes"
    assert all(rows_of(db, run_id) == KEPT for run_id in old)

    pruned = await retention(infra, namespace, export_to=tmp_path).prune()

    assert pruned.runs == 3 and pruned.exported_files == 1
    (written,) = (tmp_path / tenant).glob("*.jsonl")
    lines = [json.loads(line) for line in written.read_text().splitlines()]
    assert [(line["run_id"], line["seq"]) for line in lines] == [(str(r), s) for r in old for s in (1, 2, 3)]
    assert not list((tmp_path / tenant).glob("*.partial"))
    assert all(rows_of(db, run_id) == GONE for run_id in old)


async def test_processed_message_claims_are_forgotten_after_the_redelivery_horizon(
    infra: Infra, namespace: str, db: Engine
):
    with db.begin() as connection:
        for days in (9, 10, 7, 1):
            connection.execute(
                text("insert into processed_messages values ('orchestrator', :m, :at)"),
                {"m": uuid.uuid4(), "at": NOW - days * DAY},
            )
    pruned = await retention(infra, namespace, export_to=None).prune()
    assert pruned.processed_messages == 2
    with db.connect() as connection:
        left = (
            connection.execute(text("select processed_at from processed_messages order by 1")).scalars().all()
        )
    assert left == [NOW - 7 * DAY, NOW - DAY]


async def test_the_node_runner_prunes_results_of_ended_runs_done_tasks_and_settled_notifications_only(
    infra: Infra, namespace: str, db: Engine, tenant: str
):
    ended = add_run(db, tenant, status="completed", ended_days_ago=5)
    running = add_run(db, tenant, status="running", ended_days_ago=None)
    with db.begin() as connection:
        for run_id in (ended, running):
            values = {"r": run_id, "t": tenant, "at": NOW - 40 * DAY, "h": "0" * 64}
            connection.execute(
                text("insert into runner_executions values (:r, 'n', 1, :t, 'http_request', '{}', :at)"),
                values,
            )
            connection.execute(text("insert into ai_answers values (:r, :h, '{}', :at)"), values)
        for status, done in (("done", NOW - 100 * DAY), ("open", None), ("done", NOW - 10 * DAY)):
            connection.execute(
                text(
                    "insert into tasks (id, tenant_id, assignee_role, title, message, status, created_at,"
                    " done_at) values (:id, :t, 'ops', 'x', 'y', :s, :c, :d)"
                ),
                {"id": uuid.uuid4(), "t": tenant, "s": status, "c": NOW - 200 * DAY, "d": done},
            )
        notes = {}
        for name, status, updated in (
            ("delivered_long_ago", "delivered", NOW - 40 * DAY),
            ("given_up_lately", "given_up", NOW - 10 * DAY),
            ("failing_long", "failing", NOW - 40 * DAY),
        ):
            notes[name] = uuid.uuid4()
            connection.execute(
                text(
                    "insert into notifications (id, tenant_id, source, source_id, reason, channel, recipient,"
                    " subject, body, status, attempts, created_at, updated_at) values (:id, :t, 'task', :id,"
                    " 'task', 'email', 'a@b.test', 's', 'b', :s, 1, :at, :at)"
                ),
                {"id": notes[name], "t": tenant, "s": status, "at": updated},
            )
            connection.execute(
                text("insert into notification_attempts values (:id, 1, :at, 'failed', 'x')"),
                {"id": notes[name], "at": updated},
            )
    engine = create_async_engine(infra.settings(namespace))
    try:
        removed = {
            s.name: await prune_batches(engine, s, NOW, batch=1)
            for s in runner_statements(
                results_keep=30 * DAY, usage_keep=400 * DAY, tasks_keep=90 * DAY, notifications_keep=30 * DAY
            )
        }
    finally:
        await engine.dispose()
    assert removed == {
        "runner_executions": 1,
        "ai_answers": 1,
        "ai_token_usage": 0,
        "tasks": 1,
        "notifications": 1,
    }
    with db.connect() as connection:
        assert connection.execute(text("select run_id from runner_executions")).scalars().all() == [running]
        assert connection.execute(text("select run_id from ai_answers")).scalars().all() == [running]
        assert connection.execute(text("select count(*) from tasks")).scalar() == 2
        kept = {notes["given_up_lately"], notes["failing_long"]}
        assert set(connection.execute(text("select id from notifications")).scalars().all()) == kept
        assert (
            set(connection.execute(text("select notification_id from notification_attempts")).scalars())
            == kept
        )


async def test_the_approval_service_prunes_closed_approvals_with_their_trail_never_a_pending_one(
    infra: Infra, namespace: str, db: Engine, tenant: str
):
    ids = {}
    with db.begin() as connection:
        for name, status, closed in (
            ("closed_long_ago", "approved", NOW - 400 * DAY),
            ("closed_lately", "rejected", NOW - 10 * DAY),
            ("pending", "pending", None),
        ):
            ids[name] = uuid.uuid4()
            connection.execute(
                text(
                    "insert into approvals (id, tenant_id, run_id, node_id, workflow_id, title, description,"
                    " data, data_hash, assignee_role, quorum, allow_self_approval, on_deadline, status,"
                    " requested_at, closed_at) values (:id, :t, :r, 'n', :w, 'x', 'y', '{}', :h, 'ops', 1,"
                    " false, 'fail', :s, :req, :c)"
                ),
                {
                    "id": ids[name],
                    "t": tenant,
                    "r": uuid.uuid4(),
                    "w": uuid.uuid4(),
                    "h": "0" * 64,
                    "s": status,
                    "req": NOW - 500 * DAY,
                    "c": closed,
                },
            )
            trail = {"id": ids[name], "t": tenant, "h": "0" * 64, "at": NOW - 500 * DAY}
            for statement in (
                (
                    "insert into approval_audit (approval_id, tenant_id, action, detail, at)"
                    " values (:id, :t, 'requested', '{}', :at)"
                ),
                "insert into approval_decisions values (:id, 'someone', 'approve', '', :h, :at)",
                (
                    "insert into approval_notifications (approval_id, tenant_id, assignee_role, reason,"
                    " created_at) values (:id, :t, 'ops', 'requested', :at)"
                ),
            ):
                connection.execute(text(statement), trail)
    engine = create_async_engine(infra.settings(namespace))
    try:
        (statement,) = approval_statements(closed_keep=365 * DAY)
        assert await prune_batches(engine, statement, NOW) == 1
    finally:
        await engine.dispose()
    with db.connect() as connection:
        for table, key in (
            ("approvals", "id"),
            ("approval_audit", "approval_id"),
            ("approval_decisions", "approval_id"),
            ("approval_notifications", "approval_id"),
        ):
            left = set(connection.execute(text(f"select {key} from {table}")).scalars())
            assert left == {ids["closed_lately"], ids["pending"]}, table
