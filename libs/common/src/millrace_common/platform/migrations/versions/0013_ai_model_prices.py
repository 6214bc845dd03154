"""The prices a tenant pays per model (per million prompt and completion tokens, in the tenant's one
currency), so the usage report can show cost. Empty until the tenant sets them; a model without a
price has no cost rather than a made-up one.

The usage report also groups by ``ai_token_usage.workflow_id``, which ``0013_agent_steps`` adds (this
migration depends on it).

Revision ID: 0013_ai_model_prices
"""

from alembic import op

revision = "0013_ai_model_prices"
down_revision = "0012_code_node_pins"
branch_labels = None
depends_on = ("0013_agent_steps",)


def upgrade() -> None:
    op.execute(
        "alter table tenant_ai_settings add column model_prices jsonb not null default '{}'::jsonb,"
        " add column price_currency varchar(3) not null default 'USD'"
    )


def downgrade() -> None:
    op.execute("alter table tenant_ai_settings drop column model_prices, drop column price_currency")
