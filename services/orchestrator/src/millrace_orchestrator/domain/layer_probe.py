import sqlalchemy  # noqa: F401
