"""A workflow's description and owner: who created it and who saved it last (a user's or an API
key's id; null for workflows made before this migration).

Revision ID: 0011_workflow_metadata
"""

from alembic import op

revision = "0011_workflow_metadata"
down_revision = "0010_dead_letters"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "alter table workflows add column description text not null default '',"
        " add column created_by uuid, add column updated_by uuid"
    )


def downgrade() -> None:
    op.execute(
        "alter table workflows drop column description, drop column created_by, drop column updated_by"
    )
