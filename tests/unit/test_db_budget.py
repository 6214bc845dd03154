"""The connection settings: no startup parameters on any connection, ``search_path`` set only for a
namespaced installation whose role does not carry it, and the engine's share of the process budget."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from millrace_common.platform.db import conninfo, engine_pool_size, schema_setter
from millrace_common.platform.settings import ServiceSettings

URL = "postgresql+psycopg://millrace:secret@db.example:5432/millrace?sslmode=require"


def settings(**values: object) -> ServiceSettings:
    return ServiceSettings(service_name="budget", database_url=URL, **values)  # type: ignore[arg-type]


def test_connections_carry_no_startup_options():
    info = conninfo(settings(namespace="acme"))
    assert "options" not in info and "search_path" not in info
    assert info.startswith("postgresql://") and "sslmode=require" in info


def test_search_path_is_set_only_for_a_namespace_the_role_does_not_carry():
    assert schema_setter(settings()) is None, "production: the tables are in public, nothing to set"
    assert schema_setter(settings(namespace="acme")) is not None
    assert schema_setter(settings(namespace="acme", db_search_path_from_role=True)) is None


@given(
    budget=st.integers(min_value=4, max_value=200),
    pool_size=st.integers(min_value=1, max_value=200),
    reserved=st.integers(min_value=0, max_value=200),
)
def test_the_engine_gets_what_the_direct_pools_leave_at_most_its_pool_size(
    budget: int, pool_size: int, reserved: int
):
    size = engine_pool_size(settings(db_max_connections=budget, db_pool_size=pool_size), reserved)
    assert 1 <= size <= pool_size
    if reserved < budget:
        assert size + reserved <= budget
        assert size == min(pool_size, budget - reserved)
