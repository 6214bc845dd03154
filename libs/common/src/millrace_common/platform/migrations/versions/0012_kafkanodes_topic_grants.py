"""Topic grants: which outside Kafka topic a tenant's Kafka triggers may read (``consume``) and its
publish nodes may write (``produce``). Kept beside ``producer_grants``; ``millrace-admin grants`` and the
admin API apply them to the broker as ACLs (``docs/triggers.md``).

Revision ID: 0012_kafkanodes_topic_grants
"""

from alembic import op

revision = "0012_kafkanodes_topic_grants"
down_revision = "0011_named_schedules"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table topic_grants (
            tenant_id varchar(64) not null references tenants (id) on delete cascade,
            topic varchar(249) not null,
            access varchar(16) not null check (access in ('consume', 'produce')),
            created_by text not null,
            created_at timestamptz not null,
            primary key (tenant_id, topic, access)
        );
        create index topic_grants_by_topic on topic_grants (topic, access);
        """
    )


def downgrade() -> None:
    op.execute("drop table topic_grants")
