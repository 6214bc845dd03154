"""What the node runner prunes, as statements for ``millrace_common.platform.pruning``: attempts' results
and AI answers of runs that are no longer running (a run still running, or not yet projected, keeps
them however old), the AI token ledger's rows, and tasks done long ago. Each statement deletes a batch
of rows found by an index of migration 0010, locked with ``skip locked``."""

from __future__ import annotations

from datetime import timedelta

from millrace_common.platform.pruning import PruneStatement

_RUN_ENDED = "exists (select 1 from runs r where r.run_id = {alias}.run_id and r.finished_at is not null)"


def statements(
    *,
    results_keep: timedelta,
    usage_keep: timedelta,
    tasks_keep: timedelta,
    notifications_keep: timedelta = timedelta(days=30),
) -> tuple[PruneStatement, ...]:
    return (
        PruneStatement(
            "runner_executions",
            "delete from runner_executions where (run_id, node_id, attempt) in ("
            " select e.run_id, e.node_id, e.attempt from runner_executions e where e.recorded_at < :before"
            f" and {_RUN_ENDED.format(alias='e')}"
            " order by e.recorded_at limit :batch for update of e skip locked) returning 1",
            results_keep,
        ),
        PruneStatement(
            "ai_answers",
            "delete from ai_answers where (run_id, input_hash) in ("
            " select a.run_id, a.input_hash from ai_answers a where a.created_at < :before"
            f" and {_RUN_ENDED.format(alias='a')}"
            " order by a.created_at limit :batch for update of a skip locked) returning 1",
            results_keep,
        ),
        PruneStatement(
            "ai_token_usage",
            "delete from ai_token_usage where id in (select id from ai_token_usage"
            " where recorded_at < :before order by recorded_at limit :batch for update skip locked)"
            " returning 1",
            usage_keep,
        ),
        PruneStatement(
            "tasks",
            "delete from tasks where id in (select id from tasks where done_at is not null"
            " and done_at < :before order by done_at limit :batch for update skip locked) returning 1",
            tasks_keep,
        ),
        PruneStatement(
            "notifications",
            "with doomed as (select id from notifications where status in ('delivered', 'given_up')"
            " and updated_at < :before order by updated_at limit :batch for update skip locked),"
            " gone as (delete from notification_attempts where notification_id in (select id from doomed))"
            " delete from notifications where id in (select id from doomed) returning 1",
            notifications_keep,
        ),
    )
