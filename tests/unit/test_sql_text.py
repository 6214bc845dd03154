"""SQL text built for the direct connections: ``:name`` parameters numbered for PostgreSQL, and
statements put together with the checks they must evaluate."""

from __future__ import annotations

from millrace_common.platform.bulk import Write, together
from millrace_common.platform.pg import _numbered


def test_named_parameters_become_numbered_ones_each_name_once_and_casts_stay():
    query, names = _numbered("select cast(:a as int), x::text, :b, :a, '%' from t where y = :b")
    assert query == b"select cast($1 as int), x::text, $2, $1, '%' from t where y = $2"
    assert names == ("a", "b")


def test_quoted_text_is_left_as_it_is():
    query, names = _numbered("""select ':not' as "a:b", 'it''s :x', :y""")
    assert query == b"""select ':not' as "a:b", 'it''s :x', $1"""
    assert names == ("y",)


def test_checks_are_selected_by_the_statement_before_the_ids_so_they_raise_first():
    writes = [
        Write("insert into t (v) select 1 returning id", {}),
        Write("select millrace_ensure(true, 'why') as ok", {}, name="guard"),
    ]
    statement = together(writes, ids_of=[0], checks=[1])
    assert statement.sql.startswith("with w0 as (insert into t (v) select 1 returning id), guard as (select")
    assert statement.sql.endswith(
        "select (select bool_and(ok) from guard),"
        " (select coalesce(string_agg(cast(id as text), ','), '') from (select id from w0) as ids)"
    )
    alone = together([writes[1]], checks=[0])
    assert alone.sql.endswith("select (select bool_and(ok) from guard)")
