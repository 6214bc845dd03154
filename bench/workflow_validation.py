"""How long ``validate_definition`` takes on the largest definitions the limits allow: 500 nodes and
nearly 2,000 edges, without templates and with about 1,000 distinct templates (each is compiled when
it is checked). CPU seconds of this process, best of ``--repeat``.

    uv run --frozen python -m bench.workflow_validation [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from millrace_common.language.workflow_validation import validate_definition

from bench.common import Figure, machine, print_figures
from tests.unit.test_workflow_validation import large_definition


def seconds(raw: str, repeat: int) -> tuple[float, float]:
    """The first call (templates compiled) and the best of the rest (compiled templates are cached)."""
    times = []
    for _ in range(repeat):
        began = time.process_time()
        report = validate_definition(raw)
        times.append(time.process_time() - began)
        assert report.ok, report.problems[:3]
    return times[0], min(times[1:] or times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    print(f"workflow validation on {machine()}")
    plain = json.dumps(large_definition(templated=False))
    templated = json.dumps(large_definition(templated=True))
    figures = []
    for label, raw in (("without templates", plain), ("with ~1,000 distinct templates", templated)):
        first, best = seconds(raw, options.repeat)
        figures.append(Figure(f"{label}, first call", first, "s", f"{len(raw):,} bytes"))
        figures.append(Figure(f"{label}, again (best)", best, "s", "compiled templates cached"))
    print_figures("validate_definition, 500 nodes, ~2,000 edges", figures)


if __name__ == "__main__":
    main()
