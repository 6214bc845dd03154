"""The outbox's producer index answers ``producer like '<name>@%'`` too, whatever the database's
collation: the rows a ``LiveRelay`` writes carry ``<producer>@<instance>``, and the outbox gauge and
the relay's sweep look for a producer's rows under both names. A plain btree on a column of a
non-C collation cannot serve a ``like`` prefix, so they read the whole table, which a queue table's
churn leaves many times the size of its few live rows (115 MB for about 1,000 rows in the benchmark).
``varchar_pattern_ops`` orders by bytes, serves equality, ``like`` prefixes, and ``order by id`` within
one producer (the ``OutboxRelay``'s pass) as the old index did.

Revision ID: 0014_outbox_producer_pattern
"""

from alembic import op

revision = "0014_outbox_producer_pattern"
down_revision = "0013_ai_model_prices"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Concurrently, outside the migration's transaction: a plain build holds off every write to the
    # outbox (every service's business transaction) while it reads a heap that may be large.
    with op.get_context().autocommit_block():
        op.execute(
            "create index concurrently if not exists outbox_by_producer_pattern"
            " on outbox (producer varchar_pattern_ops, id)"
        )
        op.execute("drop index concurrently if exists outbox_by_producer")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("create index concurrently if not exists outbox_by_producer on outbox (producer, id)")
        op.execute("drop index concurrently if exists outbox_by_producer_pattern")
