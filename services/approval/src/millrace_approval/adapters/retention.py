"""What the approval service prunes, as a statement for ``millrace_common.platform.pruning``: approvals
closed long ago, with their decisions, audit trail and notifications, in one statement per batch (an
approval still pending is never touched, however old)."""

from __future__ import annotations

from datetime import timedelta

from millrace_common.platform.pruning import PruneStatement


def statements(*, closed_keep: timedelta) -> tuple[PruneStatement, ...]:
    return (
        PruneStatement(
            "approvals",
            "with doomed as (select id from approvals where closed_at is not null and closed_at < :before"
            "  and status <> 'pending' order by closed_at limit :batch for update skip locked),"
            " gone_decisions as (delete from approval_decisions where approval_id in (table doomed)),"
            " gone_audit as (delete from approval_audit where approval_id in (table doomed)),"
            " gone_notes as (delete from approval_notifications where approval_id in (table doomed)),"
            " gone_deadlines as (delete from approval_deadlines where approval_id in (table doomed))"
            " delete from approvals where id in (table doomed) returning 1",
            closed_keep,
        ),
    )
