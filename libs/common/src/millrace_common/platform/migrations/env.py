from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

config = context.config
schema = config.attributes.get("schema", "public")

# No startup options (PgBouncer in transaction mode refuses them); the schema is set on the
# session. Migrations hold a session-level advisory lock, so they run against PostgreSQL itself or a
# session-mode pool, never through a transaction-mode PgBouncer (docs/operations.md).
engine = create_engine(config.get_main_option("sqlalchemy.url"))
try:
    with engine.connect() as connection:
        # Two processes migrating at once (several `make up`s, parallel tests) take turns. The lock is
        # the session's: a failed migration must still release it (disposing the engine closes the
        # connection), or every later migration of every schema would wait for it forever.
        connection.execute(text("select pg_advisory_lock(7130)"))
        connection.execute(text(f'create schema if not exists "{schema}"'))
        connection.execute(text(f'set search_path to "{schema}"'))
        connection.commit()
        context.configure(connection=connection, version_table_schema=schema)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
        connection.execute(text("select pg_advisory_unlock(7130)"))
finally:
    engine.dispose()
