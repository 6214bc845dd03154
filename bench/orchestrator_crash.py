"""The crash drill of ``tests/e2e/test_orchestrator_crash.py``, longer: many runs started through the
API in waves, the orchestrator SIGKILLed at a random moment inside each wave's work and restarted.
Checks the same things (every run completed; one ``node.succeeded`` per node that ran and one
``run.completed`` per run in the log; seq 1..n; no outbox rows or timers left; no run completed
twice on ``runs.events``) and prints what the kills cost.

    uv run --frozen python -m bench.orchestrator_crash [--runs 2000] [--kills 10] [--seed N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine, text

from bench.common import (
    Figure,
    bench_namespace,
    infra_from_env,
    machine,
    median,
    print_figures,
    schema_engine,
)
from tests.e2e.test_orchestrator_crash import (
    CrashDrill,
    Kill,
    completed_twice,
    create_active_workflow,
    examine_logs,
    published_completions,
    wait_for_empty,
    wait_until_finished,
)
from tests.support.api import provision_tenant, signed_in
from tests.support.processes import ARTIFACTS, System


def recovery_seconds(database: Engine, kills: list[Kill]) -> list[float]:
    """For each kill, how long until the log grew again (the first event recorded after it)."""
    found = []
    with database.connect() as connection:
        for kill in kills:
            first = connection.execute(
                text(
                    "select min(extract(epoch from recorded_at)) from run_events"
                    " where recorded_at > to_timestamp(:t)"
                ),
                {"t": kill.at_time},
            ).scalar_one()
            if first is not None:
                found.append(float(first) - kill.at_time)
    return found


def redeliveries(namespace: str) -> int:
    """Messages the orchestrators recognised as handled before (logged as duplicates), over every life."""
    total = 0
    for path in ARTIFACTS.glob(f"{namespace}-orchestrator*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if "duplicate message" not in line:
                continue
            try:
                total += int(json.loads(line).get("count", 1))
            except ValueError:
                total += 1
    return total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=2_000)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=None)
    options = parser.parse_args()
    seed = options.seed if options.seed is not None else uuid.uuid4().int % 1_000_000
    infra = infra_from_env()
    print(f"crash drill on {machine()}: {options.runs:,} runs, {options.kills} kills, seed {seed}")

    with bench_namespace(infra, "crash") as namespace, schema_engine(infra, namespace) as database:
        system = System(infra, namespace)
        try:
            system.start(("gateway", "orchestrator"))
            api = signed_in(system.url("gateway"), provision_tenant(infra, namespace, f"crash-{seed}"))
            workflow_id = create_active_workflow(api, options.runs)
            drill = CrashDrill(system, api, workflow_id, database, random.Random(seed))
            began = time.monotonic()
            run_ids = drill.run(options.runs, options.kills)
            statuses = wait_until_finished(database, run_ids, timeout=120)
            elapsed = time.monotonic() - began
            findings = examine_logs(database, run_ids)
            outbox_left = wait_for_empty(database, "outbox")
            timers_left = wait_for_empty(database, "timers")
            published = asyncio.run(published_completions(infra, namespace))
            twice = completed_twice(published, findings.completion_ids)
            recoveries = recovery_seconds(database, drill.kills)
            republished = sum(len(ids) - len(set(ids)) for ids in published.values())
            duplicates = redeliveries(namespace)
        finally:
            system.stop_all()

    problems = findings.problems + twice
    exit_codes = Counter(kill.exit_code for kill in drill.kills)
    statuses_shown = ", ".join(f"{count:,} {status}" for status, count in sorted(statuses.items()))
    figures = [
        Figure("runs started", options.runs, "", statuses_shown),
        Figure("SIGKILLs", len(drill.kills), "", f"exit codes {dict(exit_codes)}"),
        Figure("drill, first start to last completion", elapsed, "s"),
        Figure(
            "restart until /readyz, median",
            median([k.restart_seconds for k in drill.kills]),
            "s",
            f"max {max((k.restart_seconds for k in drill.kills), default=0):.1f} s",
        ),
        Figure(
            "kill until the log grows again, median",
            median(recoveries),
            "s",
            f"max {max(recoveries, default=0):.1f} s",
        ),
        Figure("run-log events", findings.events, "", f"{findings.events / max(1, findings.runs):.1f} a run"),
        Figure("messages recognised as handled before", duplicates, "", "redelivered after a kill, skipped"),
        Figure("run.completed published again", republished, "", "the same message id: at-least-once"),
        Figure("runs with a gap in seq", len(findings.gaps), "", "must be 0"),
        Figure("runs with a node not exactly once", len(findings.node_successes), "", "must be 0"),
        Figure("runs not completed exactly once", len(findings.completions) + len(twice), "", "must be 0"),
        Figure("outbox rows left", outbox_left, "", "must be 0"),
        Figure("timers left", timers_left, "", "must be 0"),
    ]
    print_figures("orchestrator crash drill", figures)
    for problem in problems[:20]:
        print(f"  problem: {problem}")
    ok = not problems and statuses == {"completed": options.runs} and outbox_left == 0 and timers_left == 0
    print("\nverdict:", "every run completed exactly once" if ok else "FAILED (see above)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
