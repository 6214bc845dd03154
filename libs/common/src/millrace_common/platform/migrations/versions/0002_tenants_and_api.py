"""Tenants, users, API keys, credentials, AI settings, pipelines; webhook tokens on workflows.

Revision ID: 0002
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table tenants (
            id varchar(64) primary key,
            name text not null,
            created_at timestamptz not null
        );
        create table users (
            id uuid primary key,
            tenant_id varchar(64) not null references tenants (id),
            email varchar(320) not null,
            password_hash text not null,
            roles text[] not null,
            disabled boolean not null default false,
            created_at timestamptz not null,
            unique (tenant_id, email)
        );
        create table api_keys (
            id uuid primary key,
            tenant_id varchar(64) not null references tenants (id),
            name text not null,
            prefix varchar(16) not null unique,
            key_hash varchar(64) not null,
            roles text[] not null,
            created_by uuid,
            created_at timestamptz not null,
            last_used_at timestamptz,
            revoked_at timestamptz
        );
        create table credentials (
            id uuid primary key,
            tenant_id varchar(64) not null references tenants (id),
            name varchar(100) not null,
            kind varchar(16) not null,
            ciphertext bytea not null,
            created_at timestamptz not null,
            updated_at timestamptz not null,
            unique (tenant_id, name)
        );
        create table tenant_ai_settings (
            tenant_id varchar(64) primary key references tenants (id),
            base_url text not null,
            model text not null,
            api_key_ciphertext bytea,
            temperature double precision not null,
            max_tokens integer not null,
            monthly_token_budget bigint,
            allow_private_endpoint boolean not null default false,
            updated_at timestamptz not null
        );
        create table pipelines (
            tenant_id varchar(64) not null references tenants (id),
            id varchar(128) not null,
            name text not null,
            created_at timestamptz not null,
            primary key (tenant_id, id)
        );
        alter table workflows add column webhook_token varchar(64);
        create unique index workflows_by_webhook_token on workflows (webhook_token);
        create index runs_by_tenant_status on runs (tenant_id, status, started_at desc);
        """
    )
