"""Pinned sample outputs of a workflow's nodes (testing a node in the editor): one row per workflow and
node, stored with the draft and read only by the editor's tests and suggestions, never by runs.

Revision ID: 0012_code_node_pins
"""

from alembic import op

revision = "0012_code_node_pins"
down_revision = "0011_named_schedules"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table workflow_node_pins (
            workflow_id uuid not null references workflows (id) on delete cascade,
            node_id varchar(64) not null,
            tenant_id varchar(64) not null,
            output jsonb not null,
            pinned_by uuid,
            pinned_at timestamptz not null,
            primary key (workflow_id, node_id)
        );
        """
    )


def downgrade() -> None:
    op.execute("drop table workflow_node_pins")
