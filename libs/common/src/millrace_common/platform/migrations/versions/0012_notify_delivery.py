"""Notifications that arrive: each tenant's channels (SMTP server and chat incoming webhook), every
message to deliver with its state (pending, delivered, failing, given up), and every attempt made.

Revision ID: 0012_notify_delivery
"""

from alembic import op

revision = "0012_notify_delivery"
down_revision = "0006_approval"
branch_labels = None
depends_on = ("0003_runner",)  # tasks


def upgrade() -> None:
    op.execute(
        """
        create table tenant_notification_settings (
            tenant_id varchar(64) primary key references tenants (id),
            email_enabled boolean not null,
            smtp_host text,
            smtp_port integer,
            smtp_tls varchar(16) not null,
            smtp_from text,
            smtp_credential varchar(100),
            chat_enabled boolean not null,
            chat_webhook_ciphertext bytea,
            created_at timestamptz not null,
            updated_at timestamptz not null
        );
        create table notifications (
            id uuid primary key,
            tenant_id varchar(64) not null,
            source varchar(16) not null,
            source_id text not null,
            reason varchar(32) not null,
            channel varchar(16) not null,
            recipient text not null,
            subject text not null,
            body text not null,
            link text,
            status varchar(16) not null,
            attempts integer not null default 0,
            last_error text,
            next_attempt_at timestamptz,
            created_at timestamptz not null,
            updated_at timestamptz not null,
            delivered_at timestamptz,
            constraint notifications_once unique (source, source_id, channel, recipient)
        );
        create index notifications_due on notifications (next_attempt_at)
            where status in ('pending', 'failing');
        create index notifications_settled on notifications (updated_at)
            where status in ('delivered', 'given_up');
        create index notifications_by_tenant on notifications (tenant_id, created_at desc, id desc);
        create table notification_attempts (
            notification_id uuid not null,
            attempt integer not null,
            at timestamptz not null,
            outcome varchar(16) not null,
            error text,
            primary key (notification_id, attempt)
        );
        create index tasks_by_created on tasks (created_at);
        create index approval_notifications_by_created on approval_notifications (created_at);
        """
    )


def downgrade() -> None:
    op.execute(
        "drop index approval_notifications_by_created; drop index tasks_by_created;"
        " drop table notification_attempts; drop table notifications;"
        " drop table tenant_notification_settings;"
    )
