"""What the benchmarks share: where Kafka and PostgreSQL are, a namespace of their own, workflow rows
written straight to the database, and figures printed as tables.

Run a bench from the repository root as a module (``uv run --frozen python -m bench.orchestrator_core``)
or as a file (``uv run --frozen python bench/orchestrator_core.py``)."""

from __future__ import annotations

import gc
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, create_engine

from tests.support.infra import Infra, create_namespace, drop_namespace
from tests.support.workflows import insert_workflow  # noqa: F401  (the benches' way in)

DEV_KAFKA = "127.0.0.1:19092"
DEV_DATABASE = "postgresql+psycopg://millrace@127.0.0.1:15432/millrace"


def infra_from_env() -> Infra:
    """``MILLRACE_KAFKA_BOOTSTRAP`` and ``MILLRACE_DATABASE_URL`` when set, else the dev profile's."""
    return Infra(
        os.environ.get("MILLRACE_KAFKA_BOOTSTRAP", DEV_KAFKA),
        os.environ.get("MILLRACE_DATABASE_URL", DEV_DATABASE),
    )


@contextmanager
def bench_namespace(infra: Infra, label: str) -> Iterator[str]:
    """A namespace (schema and topics) for one bench run, dropped afterwards whatever happened."""
    name = f"b{label}{uuid.uuid4().hex[:8]}"
    create_namespace(infra, name)
    print(f"namespace {name}", flush=True)
    try:
        yield name
    finally:
        if os.environ.get("BENCH_KEEP_NAMESPACE") != "1":  # kept to look into afterwards, when asked
            drop_namespace(infra, name)


@contextmanager
def schema_engine(infra: Infra, namespace: str) -> Iterator[Engine]:
    """A synchronous engine whose connections see the namespace's schema."""
    engine = create_engine(infra.database_url, connect_args={"options": f"-csearch_path={namespace}"})
    try:
        yield engine
    finally:
        engine.dispose()


def node(node_id: str, node_type: str, y: int = 0, parent: str | None = None, **data: object) -> dict:
    position = {"x": 0, "y": y}
    built: dict = {"id": node_id, "type": node_type, "position": position, "data": {"name": node_id, **data}}
    return built | ({"parentId": parent} if parent else {})


def edge(source: str, target: str, handle: str | None = None) -> dict:
    built = {"id": f"{source}->{target}:{handle or ''}", "source": source, "target": target}
    return built | ({"sourceHandle": handle} if handle else {})


def set_condition_end() -> dict:
    """``trigger -> set -> condition -> end``: the shape the run-throughput target is stated for.
    Every node is a control node, so the orchestrator finishes a run in one decision."""
    at_least_zero = {"field": "vars.n", "operator": "greater_than_or_equals", "value": 0}
    return {
        "nodes": [
            node("start", "trigger", 0, kind="manual"),
            node("vars", "set", 100, variables={"n": "{{ trigger.n }}", "label": "run {{ trigger.n }}"}),
            node("check", "condition", 200, condition=at_least_zero),
            node("done", "end", 300, output={"n": "{{ vars.n }}"}),
        ],
        "edges": [edge("start", "vars"), edge("vars", "check"), edge("check", "done", "true")],
        "settings": {"max_executions_per_hour": 10_000_000},
    }


def for_each_workflow(body: str, max_concurrency: int = 50) -> dict:
    """``trigger -> for_each(trigger.items) -> end``; the body is one ``set`` node (``body="set"``) or one
    ``http_request`` node (``body="http"``, answered by whoever plays the runner)."""
    if body == "set":
        step = node("step", "set", 20, parent="each", variables={"seen": "{{ item }}", "at": "{{ index }}"})
    else:
        step = node("step", "http_request", 20, parent="each", url="http://example.test/items/{{ index }}")
    return {
        "nodes": [
            node("start", "trigger", 0, kind="manual"),
            node("each", "for_each", 100, items="{{ trigger.items }}", max_concurrency=max_concurrency),
            step,
            node("done", "end", 200, output={"count": "{{ nodes.each.output.count }}"}),
        ],
        "edges": [edge("start", "each"), edge("each", "done", "done")],
        "settings": {"max_executions_per_hour": 10_000_000, "retry_count": 0},
    }


@contextmanager
def collector_paused() -> Iterator[None]:
    """The load generator's own garbage collector is off while it sends: it collects and freezes what
    it holds on the way in (enter before the timed part) and only turns collection back on on the way
    out. A client that keeps every call it sent grows, so its full collections grew with the phase;
    each stopped every send in flight (the sender fell up to 184 ms behind its schedule, at the same
    moments of every run), and those stalls were counted as the system's latency. ``gc.unfreeze``
    is process-wide: not for a process that froze its start-up objects for good."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0..1) of ``values``; NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))
    return ordered[rank]


def percentiles(
    what: str, values_ms: Sequence[float], shares: Sequence[float] = (0.5, 0.9, 0.99), remark: str = ""
) -> list[Figure]:
    """``<what> p50``, ``p90``, ... of ``values_ms`` (milliseconds), ``remark`` on the median's line."""
    return [
        Figure(f"{what} p{round(q * 100)}", percentile(values_ms, q), "ms", remark if q == 0.5 else "")
        for q in shares
    ]


def windows(
    timed_ms: Sequence[tuple[float, float | None]], width: float, what: str = "completion"
) -> list[Figure]:
    """``(send time in s, value in ms or None if it never came)`` pairs cut into windows of ``width``
    seconds of send time from the first send: one figure per window, the ``what`` p50 of those that
    came, with the window's count sent, those that never came, p99 and max. A phase's p99 alone
    cannot tell a slow start, a stall in the middle and a steady queue apart."""
    if width <= 0:
        raise ValueError(f"a window must last more than 0 s, not {width}")
    if not timed_ms:
        return []
    first = min(at for at, _ in timed_ms)
    cut: dict[int, list[float | None]] = {}
    for at, value in timed_ms:
        cut.setdefault(int((at - first) // width), []).append(value)
    figures = []
    for index, values in sorted(cut.items()):
        came = [v for v in values if v is not None]
        missing = len(values) - len(came)
        remark = f"{len(values)} sent" + (f", {missing} never ended" if missing else "")
        if came:
            remark += f", p99 {percentile(came, 0.99):,.1f}, max {max(came):,.1f}"
        label = f"{index * width:g}-{(index + 1) * width:g} s: {what} p50"
        figures.append(Figure(label, percentile(came, 0.5), "ms", remark))
    return figures


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass(frozen=True)
class Figure:
    """One printed line: what was measured, its value, its unit, and a remark (a target, a verdict)."""

    what: str
    value: float | int | str
    unit: str = ""
    remark: str = ""


def print_figures(title: str, figures: Sequence[Figure]) -> None:
    def shown(value: float | str) -> str:
        if isinstance(value, float):
            return f"{value:,.1f}" if abs(value) >= 100 else f"{value:,.3g}" if value else "0"
        return f"{value:,}" if isinstance(value, int) else value

    rows = [(f.what, shown(f.value), f.unit, f.remark) for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    print(f"\n{title}")
    print("-" * (sum(widths) + 6))
    for what, value, unit, remark in rows:
        print(f"{what:<{widths[0]}}  {value:>{widths[1]}} {unit:<{widths[2]}}  {remark}".rstrip())


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages: other work on the machine skews every figure."""
    averages = Path("/proc/loadavg")
    return " ".join(averages.read_text().split()[:3]) if averages.exists() else "n/a"


HOST_SPEED_LOOP = 5_000_000
"""The fixed work :func:`host_speed_ms` times: a sum over this many integers in a Python loop."""


def host_speed_ms(tries: int = 3) -> float:
    """CPU milliseconds (of this thread) a fixed piece of Python work took, the best of ``tries``. The
    code never changes, so the figure measures how much a CPU second of the machine did at that
    moment: on the shared 2-core machine it went from 159 to 250 ms within a minute, idle
    (docs/benchmarks.md), and every other figure with it."""
    best = float("inf")
    for _ in range(tries):
        started = time.thread_time()
        total = 0
        for i in range(HOST_SPEED_LOOP):
            total += i
        best = min(best, time.thread_time() - started)
    return best * 1000


def machine() -> str:
    return (
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPU(s), "
        f"{platform.machine()}, load average {load_average()}"
    )
