"""Tenant-bound producers: which Kafka principal may write which tenant's events. ``millrace-admin
grants`` keeps the rows and applies them to the broker as ACLs (``docs/triggers.md``).

Revision ID: 0011_producer_grants
"""

from alembic import op

revision = "0011_producer_grants"
down_revision = "0010_dead_letters"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table producer_grants (
            principal varchar(160) not null,
            tenant_id varchar(64) not null references tenants (id) on delete cascade,
            kind varchar(32) not null,
            created_by text not null,
            created_at timestamptz not null,
            primary key (principal, tenant_id, kind)
        );
        create index producer_grants_by_tenant on producer_grants (tenant_id);
        """
    )


def downgrade() -> None:
    op.execute("drop table producer_grants")
