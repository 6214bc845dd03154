"""The restore drill: a running system (gateway and orchestrator, in a namespace of their own) makes
workflows and runs through the API; the namespace's schema is dumped with ``pg_dump`` while the system
runs, restored with ``pg_restore`` into a FRESH database, and the restored tables are compared with the
source, table by table: row counts and a digest of every row in key order (runs, their events and node
log, workflows and their versions, and the rest of the schema). Prints the comparison and the times;
exits non-zero when anything differs.

    uv run --frozen python -m bench.restore_drill [--workflows 5] [--runs 40]

Uses the ``pg_dump``/``pg_restore``/``psql`` on PATH (Debian's ``postgresql-client``, the server's major
version or newer)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from millrace_common.platform import tables
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.common import Figure, bench_namespace, edge, infra_from_env, machine, node, print_figures
from tests.support.api import provision_tenant, signed_in
from tests.support.infra import Infra
from tests.support.processes import System

COMPARED_FIRST = ("workflows", "workflow_versions", "runs", "run_events", "node_executions")


def definition(n: int) -> dict:
    at_least = {"field": "vars.n", "operator": "greater_than_or_equals", "value": n}
    return {
        "nodes": [
            node("start", "trigger", 0, kind="manual"),
            node("vars", "set", 100, variables={"n": "{{ trigger.n }}"}),
            node("check", "condition", 200, condition=at_least),
            node("high", "set", 300, variables={"side": "high"}),
            node("low", "set", 300, variables={"side": "low"}),
            node("done", "end", 400, output={"n": "{{ vars.n }}"}),
        ],
        "edges": [
            edge("start", "vars"),
            edge("vars", "check"),
            edge("check", "high", "true"),
            edge("check", "low", "false"),
            edge("high", "done"),
        ],
    }


def make_workflows_and_runs(system: System, workflows: int, runs: int) -> list[str]:
    account = provision_tenant(system.infra, system.namespace, f"drill{uuid.uuid4().hex[:6]}")
    run_ids: list[str] = []
    with signed_in(system.url("gateway"), account) as api:
        workflow_ids = []
        for n in range(workflows):
            created = api.post("/api/v1/workflows", json={"name": f"drill {n}", "definition": definition(n)})
            created.raise_for_status()
            workflow_ids.append(created.json()["id"])
        for n in range(runs):
            started = api.post(
                f"/api/v1/workflows/{workflow_ids[n % workflows]}/runs", json={"input": {"n": n}}
            )
            started.raise_for_status()
            run_ids.append(started.json()["run_id"])
        deadline = time.monotonic() + 120
        for run_id in run_ids:
            while api.get(f"/api/v1/runs/{run_id}").json().get("status") in (None, "running"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"run {run_id} did not finish")
                time.sleep(0.1)
    return run_ids


def libpq(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    return (parsed.set(database=database) if database else parsed).render_as_string(hide_password=False)


def digests(url: str, schema: str) -> dict[str, tuple[int, str]]:
    """Per table of the schema: its row count and the md5 of every row's text, in primary-key order."""
    engine = create_engine(url)
    found: dict[str, tuple[int, str]] = {}
    try:
        with engine.connect() as connection:
            names = connection.execute(
                text("select table_name from information_schema.tables where table_schema = :s"),
                {"s": schema},
            ).scalars()
            for name in sorted(names):
                table = tables.metadata.tables.get(name)
                order = ", ".join(c.name for c in table.primary_key) if table is not None else "1"
                row = connection.execute(
                    text(
                        f"select count(*), coalesce(md5(string_agg(t::text, e'\\n' order by {order})), '')"
                        f' from "{schema}"."{name}" t'
                    )
                ).one()
                found[name] = (row[0], row[1])
    finally:
        engine.dispose()
    return found


def run(command: list[str]) -> float:
    began = time.monotonic()
    subprocess.run(command, check=True, capture_output=True)
    return time.monotonic() - began


def drill(infra: Infra, namespace: str, workflows: int, runs: int) -> bool:
    system = System(infra, namespace)
    figures: list[Figure] = []
    fresh = f"millrace_restore_{uuid.uuid4().hex[:8]}"
    source = libpq(infra.database_url)
    try:
        system.start(("gateway", "orchestrator"))
        began = time.monotonic()
        run_ids = make_workflows_and_runs(system, workflows, runs)
        figures.append(
            Figure(
                "workflows and finished runs made",
                f"{workflows} / {len(run_ids)}",
                "",
                f"in {time.monotonic() - began:.1f} s through the API",
            )
        )
        with tempfile.TemporaryDirectory() as folder:
            dump = Path(folder) / "millrace.dump"
            took = run(["pg_dump", "--format=custom", f"--schema={namespace}", f"--file={dump}", source])
            figures.append(Figure("pg_dump (system running)", took, "s", f"{dump.stat().st_size:,} bytes"))
            system.stop_all()  # the source stays as it was dumped, to compare with
            run(["psql", source, "-v", "ON_ERROR_STOP=1", "-c", f'create database "{fresh}"'])
            took = run(
                [
                    "pg_restore",
                    "--exit-on-error",
                    "--no-owner",
                    f"--dbname={libpq(infra.database_url, fresh)}",
                    str(dump),
                ]
            )
            figures.append(Figure("pg_restore into a fresh database", took, "s", fresh))
        original = digests(infra.database_url, namespace)
        restored = digests(
            make_url(infra.database_url).set(database=fresh).render_as_string(False), namespace
        )
        ordered = [*COMPARED_FIRST, *sorted(set(original) - set(COMPARED_FIRST))]
        same = True
        for name in ordered:
            equal = original.get(name) == restored.get(name)
            same &= equal
            count = original.get(name, (0, ""))[0]
            figures.append(
                Figure(f"  {name}", count, "rows", "same rows" if equal else f"DIFFERS: {restored.get(name)}")
            )
        figures.append(Figure("verdict", "restored = source" if same else "MISMATCH", ""))
        print_figures(f"restore drill: namespace {namespace} into database {fresh}", figures)
        return same
    finally:
        system.stop_all()
        subprocess.run(["psql", source, "-c", f'drop database if exists "{fresh}"'], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workflows", type=int, default=5)
    parser.add_argument("--runs", type=int, default=40)
    options = parser.parse_args()
    infra = infra_from_env()
    version = subprocess.run(["pg_dump", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"restore drill on {machine()}; {version}")
    with bench_namespace(infra, "restore") as namespace:
        ok = drill(infra, namespace, options.workflows, options.runs)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
