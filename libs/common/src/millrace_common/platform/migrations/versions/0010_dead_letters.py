"""The gateway's index of dead letters: every record of every ``<topic>.dlq``, with the state an
operator gave it (pending, replaying, replayed, discarded). Kafka records cannot be deleted or marked,
so what was done with a dead letter lives here.

Revision ID: 0010_dead_letters
"""

from alembic import op

revision = "0010_dead_letters"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table dead_letters (
            id bigserial primary key,
            topic varchar(255) not null,
            dlq_partition integer not null,
            dlq_offset bigint not null,
            tenant_id varchar(64),
            source_partition integer not null,
            source_offset bigint not null,
            consumer_group text not null,
            cause varchar(32) not null,
            reason text not null,
            error_type text,
            trace text,
            attempts integer not null,
            key text,
            headers jsonb not null,
            value bytea not null,
            value_truncated boolean not null,
            dead_lettered_at timestamptz not null,
            indexed_at timestamptz not null,
            state varchar(16) not null default 'pending',
            replay_requested_at timestamptz,
            replayed_at timestamptz,
            replayed_by text,
            discarded_at timestamptz,
            discarded_by text,
            unique (topic, dlq_partition, dlq_offset)
        );
        -- A message dead-lettered twice (its consumer crashed before committing past it) is one entry.
        create unique index dead_letters_source on dead_letters (topic, source_partition, source_offset)
            where source_offset >= 0;
        create index dead_letters_listed on dead_letters (dead_lettered_at desc, id desc);
        create index dead_letters_tenant on dead_letters (tenant_id, dead_lettered_at desc);
        create index dead_letters_replaying on dead_letters (replay_requested_at) where state = 'replaying';
        """
    )


def downgrade() -> None:
    op.execute("drop table dead_letters")
