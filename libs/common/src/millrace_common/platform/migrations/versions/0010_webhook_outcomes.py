"""The gateway decides a webhook call's outcome itself and starts the run straight from its outbox (no
hop through the trigger service): each delivery row keeps that outcome and, when no run started, why.

Revision ID: 0010_webhook_outcomes
"""

from alembic import op

revision = "0010_webhook_outcomes"
down_revision = "0009_one_hourly_limit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "alter table webhook_deliveries add column outcome varchar(32) not null default 'started',"
        " add column reason text"
    )


def downgrade() -> None:
    op.execute("alter table webhook_deliveries drop column outcome, drop column reason")
