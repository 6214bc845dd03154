"""Database engine and session factory; built in each service's bootstrap, never at import."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from millrace_common.platform.settings import ServiceSettings


def create_engine(settings: ServiceSettings) -> AsyncEngine:
    """An async engine whose connections use the settings' schema (the namespace)."""
    return create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
        connect_args={"options": f"-csearch_path={settings.database_schema}"},
    )


async def database_reachable(engine: AsyncEngine) -> bool:
    async with engine.connect() as connection:
        await connection.execute(text("select 1"))
    return True
