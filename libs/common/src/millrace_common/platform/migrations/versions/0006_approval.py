"""The approval service's tables: requests, decisions, the audit trail, escalation deadlines and
notifications for assignees.

Revision ID: 0006_approval
"""

from alembic import op

revision = "0006_approval"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table approvals (
            id uuid primary key,
            tenant_id varchar(64) not null,
            run_id uuid not null,
            node_id varchar(64) not null,
            workflow_id uuid not null,
            title text not null,
            description text not null,
            data jsonb not null,
            data_hash varchar(64) not null,
            assignee_user text,
            assignee_role varchar(100),
            quorum integer not null,
            allow_self_approval boolean not null,
            requested_by text,
            on_deadline varchar(16) not null,
            escalate_to jsonb,
            due_at timestamptz,
            status varchar(16) not null,
            requested_at timestamptz not null,
            escalated_at timestamptz,
            closed_at timestamptz,
            check ((assignee_user is null) <> (assignee_role is null))
        );
        create index approvals_pending on approvals (tenant_id, status, requested_at);
        create index approvals_by_run on approvals (run_id);

        create table approval_decisions (
            approval_id uuid not null references approvals (id),
            decided_by text not null,
            decision varchar(16) not null,
            note text not null,
            data_hash varchar(64) not null,
            decided_at timestamptz not null,
            primary key (approval_id, decided_by)
        );

        create table approval_audit (
            id bigserial primary key,
            approval_id uuid not null references approvals (id),
            tenant_id varchar(64) not null,
            actor text,
            action varchar(32) not null,
            detail jsonb not null,
            at timestamptz not null
        );
        create index approval_audit_by_approval on approval_audit (approval_id, id);

        create table approval_deadlines (
            approval_id uuid primary key references approvals (id),
            tenant_id varchar(64) not null,
            fire_at timestamptz not null
        );
        create index approval_deadlines_due on approval_deadlines (fire_at);

        create table approval_notifications (
            id bigserial primary key,
            approval_id uuid not null references approvals (id),
            tenant_id varchar(64) not null,
            assignee_user text,
            assignee_role varchar(100),
            reason varchar(32) not null,
            created_at timestamptz not null,
            read_at timestamptz
        );
        create index approval_notifications_by_tenant on approval_notifications (tenant_id, created_at);
        """
    )


def downgrade() -> None:
    op.execute(
        "drop table approval_notifications; drop table approval_deadlines; drop table approval_audit; "
        "drop table approval_decisions; drop table approvals;"
    )
