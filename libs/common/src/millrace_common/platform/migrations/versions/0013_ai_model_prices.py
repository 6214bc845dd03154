"""The prices a tenant pays per model (per million prompt and completion tokens, in the tenant's one
currency), so the usage report can show cost. Empty until the tenant sets them; a model without a
price has no cost rather than a made-up one.

Also the ledger's ``ai_token_usage.workflow_id`` (nullable: rows from before have none), which the usage
report groups by. The agent runner's migration adds it too, with the same ``if not exists``, so either
of the two branches may run first; the downgrade leaves it to that migration.

Revision ID: 0013_ai_model_prices
"""

from alembic import op

revision = "0013_ai_model_prices"
down_revision = "0012_code_node_pins"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "alter table tenant_ai_settings add column model_prices jsonb not null default '{}'::jsonb,"
        " add column price_currency varchar(3) not null default 'USD'"
    )
    op.execute("alter table ai_token_usage add column if not exists workflow_id uuid")


def downgrade() -> None:
    op.execute("alter table tenant_ai_settings drop column model_prices, drop column price_currency")
