"""The long fault drill (``tests/support/drills.py``; the short one is ``tests/e2e/test_fault_drills.py``):
a steady load of webhook calls and records (for_each runs with HTTP calls and a record update) while
each of the five services is killed with SIGKILL and restarted, the Kafka broker is killed and
restarted, and PostgreSQL is stopped (immediate mode) and started, each held down ``--hold`` seconds
(45 by default). Prints what was sent and answered, what was lost and duplicated (must be 0), and how
long each fault took to recover from (from the restart to the first run started after it finishing).

Restarts the Kafka and PostgreSQL of the local profile it runs on (``dev`` unless
``MILLRACE_KAFKA_BOOTSTRAP`` points at the ``test`` profile's), so nothing else should use them meanwhile.

    uv run --frozen python -m bench.fault_drills [--hold 45] [--rate 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bench_namespace, infra_from_env, machine
from tests.support.drills import Drill
from tests.support.network import loopback_server
from tests.support.processes import System


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hold", type=float, default=45.0, help="seconds each fault keeps its part down")
    parser.add_argument(
        "--rate", type=float, default=20.0, help="calls a second, webhooks and records together"
    )
    parser.add_argument("--settle", type=float, default=10.0, help="seconds between faults")
    options = parser.parse_args()
    infra = infra_from_env()
    print(f"fault drill on {machine()}: hold {options.hold:g} s, {options.rate:g} calls/s")
    with bench_namespace(infra, "drill") as namespace, loopback_server() as server:
        system = System(infra, namespace)
        try:
            system.start()
            drill = Drill(
                system,
                server,
                rate_per_second=options.rate,
                hold_seconds=options.hold,
                settle_seconds=options.settle,
                slow_seconds=10,
            )
            began = time.monotonic()
            with drill.load():
                drill.run_all_faults()
            report = drill.audit(drain_seconds=300)
            drill.close()
        finally:
            system.stop_all()
    print(f"drill took {time.monotonic() - began:.0f} s")
    for line in report.lines():
        print(line)
    for problem in report.problems:
        print(f"PROBLEM: {problem}")
    sys.exit(1 if report.problems else 0)


if __name__ == "__main__":
    main()
