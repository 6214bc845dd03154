"""``millrace-migrate``: bring the database schema (the namespace's schema) to the newest version."""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

from millrace_common.platform.environment import load_settings
from millrace_common.platform.settings import ServiceSettings


def upgrade(settings: ServiceSettings) -> None:
    """Create the namespace's schema if needed and apply every migration, idempotently."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", settings.database_url)
    config.attributes["schema"] = settings.database_schema
    command.upgrade(config, "heads")


def main() -> None:
    settings = load_settings(ServiceSettings, "millrace-migrate")
    upgrade(settings)
    print(f"database schema {settings.database_schema!r} is at the newest version", file=sys.stderr)
