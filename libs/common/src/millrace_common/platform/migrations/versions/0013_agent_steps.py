"""AI usage by workflow, and room for an agent's steps: ``ai_token_usage`` gains the workflow whose
node used the tokens, and the columns keyed by a node instance that an ``ai_agent``'s turns and tool
calls reach (``K#t12.3``, where ``K`` is already long inside nested for_each loops) grow from 64 to
200 characters. Widening a varchar changes no stored row, so PostgreSQL rewrites neither the tables
nor their indexes.

Revision ID: 0013_agent_steps
"""

from alembic import op

revision = "0013_agent_steps"
down_revision = "0012_notify_delivery"
branch_labels = None
depends_on = ("0003_runner", "0005_timers")  # ai_token_usage, runner_executions; timers

WIDENED = ("ai_token_usage", "runner_executions", "approvals", "timers", "node_executions")


def upgrade() -> None:
    op.execute("alter table ai_token_usage add column workflow_id uuid")
    for table in WIDENED:
        op.execute(f"alter table {table} alter column node_id type varchar(200)")


def downgrade() -> None:
    # Refused by PostgreSQL while a longer node id is stored, rather than cutting ids short.
    for table in WIDENED:
        op.execute(f"alter table {table} alter column node_id type varchar(64)")
    op.execute("alter table ai_token_usage drop column workflow_id")
