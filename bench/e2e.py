"""The user's path, end to end, through public interfaces only: webhook calls and record events
produced to the records topic as an outside producer would, against the running ``make up`` system.

    make up
    uv run --frozen python -m bench.e2e [--phases abcde] [--calls 2000] [--n8n URL] [--json PATH]

Phases: (a) 16 concurrent callers, ``--calls`` webhook calls; (b) one caller at a time, ``--serial-calls``;
(c) open loop at half the rate (a) reached (or ``--rate``), sending on a schedule for ``--paced-seconds``
whatever the answers; (d) ``--records`` record events as fast as the producer goes, then at half the
rate that reached; (e) idle, ``--idle-seconds`` with nothing sent; (f) a for_each over ``--items`` items
whose body calls a server of the bench's answering after ``--call-ms``, at each ``--concurrency``
(bench/e2e_refill.py: slots busy, ratio to the ideal, the refill round trip); (g) one caller,
``--respond-calls`` calls to a ``webhook -> set -> respond_to_webhook`` workflow against as many to the
plain webhook workflow: the HTTP answer time p50/p99 and what waiting for the run's answer adds
(bench/e2e_respond.py; not in the default phases).

Each call's send time is the client's clock just before sending; a run's completion is its
``runs.finished_at`` (the same machine's clock) less that time, so it is measured as n8n's client
measures n8n's. Each completion is also split at ``runs.started_at``, when the starter (the gateway
or the trigger service) made the run's StartRun: p50 and p90 of each part. Runs/s is finished runs /
(last end - first send). CPU is read from /proc for each
service, Kafka, PostgreSQL (with every backend), Prometheus and this client before and after each
phase; the total per run counts the services, Kafka and PostgreSQL. With ``--n8n URL`` phases (a) and
(b) also drive that n8n webhook (whose answer comes when its workflow ends) for the ratio. With
``--series SECONDS`` the paced phases (c and d's second part) also print their completions window by
window of send time, which tells a slow start, a stall and a steady queue apart. With ``--stages``
each phase also prints where its completions went, step by step (bench/e2e_stages.py).

The bench makes a tenant of its own (``bench<hex>``) with two workflows and a pipeline through the
API; at the end it archives them and deletes the tenant's rows, unless ``--keep``. Its messages stay
in Kafka's topics until their retention removes them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from itertools import count
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import h11
import httpx
from aiokafka import AIOKafkaProducer
from millrace_common.contracts.messages.webhooks import run_id_for_key
from millrace_common.contracts.topics import RECORDS_EVENTS, RUNS_COMMANDS, RUNS_EVENTS, Namespace

from bench.common import (
    ROOT,
    Figure,
    collector_paused,
    host_speed_ms,
    infra_from_env,
    machine,
    percentiles,
    print_figures,
    windows,
)
from bench.e2e_http import Connection
from bench.e2e_procs import (
    SERVICES,
    Tracked,
    compiler_ms,
    cpu_ms,
    pss_mb,
    rss_mb,
    system_processes,
)
from bench.e2e_refill import for_each_refill
from bench.e2e_respond import respond_latency
from bench.e2e_stages import marks_of, stage_figures, worst_windows
from bench.e2e_system import Finished, RunLog, Setup, archive, prepare, status_counts
from tests.support.kafka import kafka_client
from tests.support.processes import listening_pid


@dataclass(frozen=True)
class Sent:
    """One call or event: the run it asks for, when it was sent (Unix seconds) and how long its
    answer took (seconds; the producer's hand-over for record events)."""

    run_id: uuid.UUID | None
    at: float
    latency: float
    status: int = 202


@dataclass
class Bench:
    args: argparse.Namespace
    setup: Setup
    log: RunLog
    tracked: list[Tracked]
    topic: str
    results: dict[str, list[Figure]]

    @property
    def hook_url(self) -> str:
        return f"{self.args.gateway}{self.setup.hook_path}"


# ---- load ---------------------------------------------------------------------------------------


async def post(connection: Connection, n: int) -> Sent:
    body = json.dumps({"n": n}).encode()
    at, started = time.time(), time.perf_counter()
    try:
        status, answer = await connection.post(body)
    except (OSError, TimeoutError, h11.ProtocolError):
        return Sent(None, at, time.perf_counter() - started, 0)
    latency = time.perf_counter() - started
    run_id = uuid.UUID(json.loads(answer)["run_id"]) if status == 202 else None
    return Sent(run_id, at, latency, status)


async def closed_loop(url: str, callers: int, calls: int) -> list[Sent]:
    """``callers`` callers, each on a keep-alive connection of its own, sending the next call as soon
    as the previous one is answered, ``calls`` in all."""
    numbers = count()
    sent: list[Sent] = []

    async def caller() -> None:
        connection = Connection(url)
        try:
            while (n := next(numbers)) < calls:
                sent.append(await post(connection, n))
        finally:
            await connection.close()

    await asyncio.gather(*(caller() for _ in range(callers)))
    return sent


async def on_schedule(rate: float, total: int, send) -> float:
    """Starts ``send(i)`` at ``i / rate`` seconds without waiting for earlier ones; returns how far
    behind its schedule the sender fell at worst (seconds)."""
    tasks, behind = [], 0.0
    start = time.perf_counter() + 0.05
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        behind = max(behind, -delay)
        tasks.append(asyncio.ensure_future(send(i)))
    await asyncio.gather(*tasks)
    return behind


async def open_loop(url: str, rate: float, seconds: float) -> tuple[list[Sent], float]:
    """Calls at ``rate`` per second whatever the answers, each on an idle keep-alive connection or, when
    every one is busy, a new one."""
    sent: list[Sent] = []
    idle: list[Connection] = []

    async def send(i: int) -> None:
        connection = idle.pop() if idle else Connection(url)
        sent.append(await post(connection, i))
        idle.append(connection)

    try:
        behind = await on_schedule(rate, max(1, round(rate * seconds)), send)
    finally:
        await asyncio.gather(*(connection.close() for connection in idle))
    return sent, behind


async def record_events(bench: Bench, total: int, rate: float | None) -> tuple[list[Sent], float]:
    """``record.created`` events of the bench's pipeline, as an outside producer sends them (the
    records contract of docs/triggers.md); each run is named by ``<message id>:<workflow id>``."""
    producer = AIOKafkaProducer(
        **kafka_client(infra_from_env().kafka_bootstrap), acks="all", enable_idempotence=True
    )
    await producer.start()
    sent: list[Sent] = []
    deliveries = []
    batch = uuid.uuid4().hex[:8]
    try:

        async def send(i: int) -> None:
            message_id, record_id = str(uuid.uuid4()), f"{batch}-{i}"
            event = {
                "type": "record.created",
                "message_id": message_id,
                "schema_version": 1,
                "tenant_id": bench.setup.tenant,
                "occurred_at": datetime.now(UTC).isoformat(),
                "pipeline_id": bench.setup.pipeline,
                "record_id": record_id,
                "data": {"n": i},
            }
            value = json.dumps(event).encode()
            at, started = time.time(), time.perf_counter()
            deliveries.append(await producer.send(bench.topic, value, key=record_id.encode()))
            run_id = run_id_for_key(f"{message_id}:{bench.setup.record_workflow}")
            sent.append(Sent(run_id, at, time.perf_counter() - started))

        if rate is None:
            behind = 0.0
            for i in range(total):
                await send(i)
        else:
            behind = await on_schedule(rate, total, send)
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()
    return sent, behind


# ---- figures ------------------------------------------------------------------------------------


def ms(seconds: float) -> float:
    return seconds * 1000


def resource_figures(
    tracked: list[Tracked],
    before: dict[str, float],
    after: dict[str, float],
    wall: float,
    runs: int,
    compiled: dict[str, float] | None = None,
) -> list[Figure]:
    """CPU per run and share of one core per process (and what of it a JVM spent compiling, from
    ``compiled``: milliseconds by name), the total over the system, and the services' memory."""
    figures, total = [], 0.0
    for t in tracked:
        used = after[t.name] - before[t.name]
        total += used if t.system else 0
        share = f"{used / ms(wall):.0%} of a core"
        if (compiling := (compiled or {}).get(t.name, 0.0)) > 0 and used > 0:
            share += f", {compiling / used:.0%} of it JIT compiling"
        remark = share if t.system else f"{share}; not in the total"
        figures.append(Figure(f"CPU {t.name}", used / runs if runs else float("nan"), "ms/run", remark))
    per_run = total / runs if runs else float("nan")
    figures.append(Figure("CPU services + Kafka + PostgreSQL", per_run, "ms/run", "target <= 4"))
    memory = rss_mb([t for t in tracked if t.name in SERVICES])
    figures.append(Figure("RSS of the five services", sum(memory.values()), "MB", "target <= 600"))
    return figures


def memory_figures(tracked: list[Tracked]) -> list[Figure]:
    """Resident memory (VmRSS with children) and proportional memory (PSS) per process."""
    rss, pss = rss_mb(tracked), pss_mb(tracked)
    figures = [Figure(f"RSS {t.name}", rss[t.name], "MB", f"PSS {pss[t.name]:,.0f} MB") for t in tracked]
    system = [t.name for t in tracked if t.system]
    services = [name for name in system if name in SERVICES]
    figures.append(
        Figure(
            "RSS of the five services",
            sum(rss[n] for n in services),
            "MB",
            f"PSS {sum(pss[n] for n in services):,.0f} MB",
        )
    )
    figures.append(
        Figure(
            "RSS services + Kafka + PostgreSQL",
            sum(rss[n] for n in system),
            "MB",
            f"PSS {sum(pss[n] for n in system):,.0f} MB",
        )
    )
    return figures


def refusals(sent: list[Sent], ok: range = range(202, 203)) -> str:
    """How many calls were not accepted, by answer status (0: no answer, the connection failed)."""
    counts = Counter(s.status for s in sent if s.status not in ok)
    return ", ".join(f"{n} answered {status}" for status, n in sorted(counts.items()))


def completion_figures(
    sent: list[Sent], found: dict[uuid.UUID, Finished], hooks: bool
) -> tuple[list[Figure], int]:
    accepted = [s for s in sent if s.run_id is not None]
    ended = [(s, found[s.run_id].finished_at) for s in accepted if _ended(s, found)]
    completions = [ms(end - s.at) for s, end in ended]
    figures = [
        Figure(
            "sent",
            len(sent),
            "",
            refusals(sent),
        ),
        Figure(
            "runs finished",
            len(ended),
            "",
            status_counts({s.run_id: found[s.run_id] for s in accepted if s.run_id in found}, len(accepted)),
        ),
    ]
    if ended:
        span = max(end for _, end in ended) - min(s.at for s in sent)
        figures.append(Figure("completed runs/s", len(ended) / span if span > 0 else float("nan"), "runs/s"))
    figures += percentiles("completion", completions)
    # Where the completion went: to the moment the starter made the run's StartRun (runs.started_at:
    # the gateway's, once it decided the call; the trigger service's, once it matched the event, in
    # the middle of its transaction), and from there to the run's end.
    starter = "gateway" if hooks else "trigger"
    made = [(s, found[s.run_id].started_at, end) for s, end in ended]
    figures += percentiles(f"sent -> {starter}'s StartRun", [ms(at - s.at) for s, at, _ in made], (0.5, 0.9))
    figures += percentiles(
        f"{starter}'s StartRun -> run ended", [ms(end - at) for _, at, end in made], (0.5, 0.9)
    )
    latencies = [ms(s.latency) for s in accepted]
    label = "202 answer" if hooks else "producer hand-over"
    figures += percentiles(label, latencies, (0.5, 0.99))
    return figures, len(ended)


def value_of(figures: list[Figure], what: str) -> float:
    return next((float(f.value) for f in figures if f.what == what), float("nan"))


# ---- phases -------------------------------------------------------------------------------------


async def measured(bench: Bench, title: str, load, hooks: bool = True, paced: bool = False) -> list[Figure]:
    """Runs ``load()`` (which returns the calls sent and how far behind schedule it fell), waits for
    every run to end, and prints and keeps the phase's figures (of a paced phase with ``--series``,
    also its completions window by window of send time)."""
    with collector_paused():
        compiling = _compiler_ms(bench.tracked)
        before, started = cpu_ms(bench.tracked), time.perf_counter()
        sent, behind = await load()
    found = await asyncio.to_thread(bench.log.wait, [s.run_id for s in sent if s.run_id], bench.args.timeout)
    wall = time.perf_counter() - started
    after = cpu_ms(bench.tracked)
    compiled = {name: used - compiling[name] for name, used in _compiler_ms(bench.tracked).items()}
    figures, ended = completion_figures(sent, found, hooks)
    if behind > 0.01:
        figures.append(Figure("sender behind its schedule, at worst", ms(behind), "ms", "open loop"))
    figures += resource_figures(bench.tracked, before, after, wall, ended, compiled)
    bench.results[title] = figures
    print_figures(title, figures)
    if paced and bench.args.series:
        series = windows(
            [
                (s.at, ms(found[s.run_id].finished_at - s.at) if _ended(s, found) else None)
                for s in sent
                if s.run_id is not None
            ],
            bench.args.series,
        )
        bench.results[f"{title}, by send time"] = series
        print_figures(f"{title}, by send time", series)
    if bench.args.stages:
        await stages(bench, title, sent, found, hooks)
    return figures


async def stages(
    bench: Bench, title: str, sent: list[Sent], found: dict[uuid.UUID, Finished], hooks: bool
) -> None:
    """Prints and keeps where the phase's completions went, stage by stage (bench/e2e_stages.py)."""
    ended = [(s.run_id, s.at, s.latency if hooks else None) for s in sent if _ended(s, found)]
    if not ended:
        return
    namespace = Namespace(os.environ.get("MILLRACE_NAMESPACE", ""))
    topics = (namespace.topic(RUNS_COMMANDS), namespace.topic(RUNS_EVENTS))
    marks = await marks_of(bench.log.engine, infra_from_env().kafka_bootstrap, topics, ended)
    figures = stage_figures(marks, hooks)
    bench.results[f"{title}, by stage"] = figures
    print_figures(f"{title}, by stage", figures)
    if bench.args.series:
        worst = worst_windows(marks, bench.args.series, hooks)
        bench.results[f"{title}, worst windows by stage"] = worst
        print_figures(f"{title}, worst windows by stage", worst)


def _compiler_ms(tracked: list[Tracked]) -> dict[str, float]:
    return {t.name: compiler_ms(t.pid) for t in tracked}


def _ended(sent: Sent, found: dict[uuid.UUID, Finished]) -> bool:
    return sent.run_id in found and bool(found[sent.run_id].finished_at)


async def n8n_phase(bench: Bench, title: str, callers: int, calls: int) -> list[Figure]:
    """The same calls to n8n, whose answer arrives when its workflow has ended: latency is completion."""
    pid = listening_pid(int(httpx.URL(bench.args.n8n).port or 80))
    tracked = [Tracked("n8n", pid)] if pid else []
    with collector_paused():
        before, started = cpu_ms(tracked), time.perf_counter()
        sent = await closed_loop(bench.args.n8n, callers, calls)
    wall = time.perf_counter() - started
    ok = [s for s in sent if 200 <= s.status < 300]
    completions = [ms(s.latency) for s in ok]
    span = max((s.at + s.latency for s in ok), default=0) - min(s.at for s in sent)
    remark = f"of {len(sent)}; {refusals(sent, ok=range(200, 300))}".rstrip("; ")
    figures = [
        Figure("calls answered 2xx", len(ok), "", remark),
        Figure("completed runs/s", len(ok) / span if ok and span > 0 else float("nan"), "runs/s"),
    ]
    figures += percentiles("completion", completions)
    if tracked:
        used = cpu_ms(tracked)["n8n"] - before["n8n"]
        remark = f"{used / ms(wall):.0%} of a core, RSS {rss_mb(tracked)['n8n']:,.0f} MB"
        figures.append(Figure("CPU n8n", used / len(ok) if ok else float("nan"), "ms/run", remark))
    bench.results[title] = figures
    print_figures(title, figures)
    return figures


def ratio_figures(millrace: list[Figure], n8n: list[Figure], target: str = "") -> list[Figure]:
    rate = value_of(millrace, "completed runs/s") / value_of(n8n, "completed runs/s")
    p50 = value_of(millrace, "completion p50") / value_of(n8n, "completion p50")
    return [
        Figure("Millrace/n8n runs/s", rate, "x", target),
        Figure("Millrace/n8n completion p50", p50, "x"),
    ]


async def idle(bench: Bench, seconds: float) -> None:
    await asyncio.sleep(5)  # what the last phase left (relays, commits) settles first
    before = cpu_ms(bench.tracked)
    await asyncio.sleep(seconds)
    after = cpu_ms(bench.tracked)
    shares = {t.name: (after[t.name] - before[t.name]) / ms(seconds) for t in bench.tracked}
    figures = [Figure(f"idle CPU {name}", f"{share:.1%}", "of a core") for name, share in shares.items()]
    services = sum(shares[name] for name in SERVICES if name in shares)
    figures.append(Figure("idle CPU of the five services", f"{services:.1%}", "of a core", "target <= 5%"))
    bench.results[f"(e) idle, {seconds:.0f} s"] = figures
    print_figures(f"(e) idle, {seconds:.0f} s with nothing sent", figures)


async def run_phases(bench: Bench) -> None:
    args, phases = bench.args, bench.args.phases
    peak = args.rate
    if "a" in phases:
        title = f"(a) {args.callers} concurrent callers, {args.calls} webhook calls"
        load = lambda: _no_lag(closed_loop(bench.hook_url, args.callers, args.calls))
        figures = await measured(bench, title, load)
        peak = peak or value_of(figures, "completed runs/s") / 2
        if args.n8n:
            n8n = await n8n_phase(
                bench, f"(a) n8n, {args.callers} callers, {args.calls} calls", args.callers, args.calls
            )
            bench.results["(a) ratio"] = ratio_figures(figures, n8n, "target >= 5")
            print_figures("(a) Millrace / n8n", bench.results["(a) ratio"])
    if "b" in phases:
        title = f"(b) one caller at a time, {args.serial_calls} webhook calls"
        figures = await measured(
            bench, title, lambda: _no_lag(closed_loop(bench.hook_url, 1, args.serial_calls))
        )
        if args.n8n:
            n8n = await n8n_phase(
                bench, f"(b) n8n, one caller, {args.serial_calls} calls", 1, args.serial_calls
            )
            bench.results["(b) ratio"] = ratio_figures(figures, n8n)
            print_figures("(b) Millrace / n8n", bench.results["(b) ratio"])
    if "c" in phases:
        if not peak or math.isnan(peak):
            print("\n(c) skipped: no rate (run phase a, or give --rate)")
        else:
            title = f"(c) open loop at {peak:.0f} calls/s for {args.paced_seconds:.0f} s"
            await measured(
                bench, title, lambda: open_loop(bench.hook_url, peak, args.paced_seconds), paced=True
            )
    if "d" in phases:
        title = f"(d) {args.records} record events, as fast as the producer goes"
        figures = await measured(bench, title, lambda: record_events(bench, args.records, None), hooks=False)
        half = args.record_rate or value_of(figures, "completed runs/s") / 2
        if half > 0:
            total = max(1, round(half * args.paced_seconds))
            title = f"(d) record events at {half:.0f}/s for {args.paced_seconds:.0f} s"
            await measured(bench, title, lambda: record_events(bench, total, half), hooks=False, paced=True)
    if "f" in phases:
        for concurrency in args.concurrency:
            await for_each_refill(
                bench, infra_from_env(), os.environ.get("MILLRACE_NAMESPACE", ""), concurrency
            )
    if "g" in phases:
        await respond_latency(bench, args.respond_calls)
    if phases.strip("e"):
        bench.results["memory"] = memory_figures(bench.tracked)
        print_figures("memory after the load", bench.results["memory"])
    if "e" in phases:
        await idle(bench, args.idle_seconds)


async def _no_lag(sending) -> tuple[list[Sent], float]:
    return await sending, 0.0


# ---- main ---------------------------------------------------------------------------------------


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gateway", default="http://127.0.0.1:18080", help="the gateway's address")
    parser.add_argument(
        "--data-dir", type=Path, default=ROOT / ".data" / "dev", help="the profile's state (pid files)"
    )
    parser.add_argument("--phases", default="abcdef", help="which phases, e.g. 'ab' (default: abcdef)")
    parser.add_argument("--calls", type=int, default=2000, help="webhook calls of phase a")
    parser.add_argument("--callers", type=int, default=16, help="concurrent callers of phase a")
    parser.add_argument("--serial-calls", type=int, default=300, help="webhook calls of phase b")
    parser.add_argument("--paced-seconds", type=float, default=15, help="length of the paced phases")
    parser.add_argument("--rate", type=float, help="calls/s of phase c (default: half of what a reached)")
    parser.add_argument("--records", type=int, default=2000, help="record events of phase d")
    parser.add_argument(
        "--record-rate", type=float, help="events/s of phase d's paced part (default: half of its burst's)"
    )
    parser.add_argument("--idle-seconds", type=float, default=30, help="length of phase e")
    parser.add_argument("--items", type=int, default=500, help="items of phase f's for_each")
    parser.add_argument(
        "--concurrency",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[7],
        help="phase f's max_concurrency; a list (e.g. 7,1) runs the loop once at each (default: 7)",
    )
    parser.add_argument("--call-ms", type=float, default=50, help="how long phase f's server takes to answer")
    parser.add_argument("--respond-calls", type=int, default=300, help="calls of phase g to each workflow")
    parser.add_argument(
        "--timeout", type=float, default=60, help="give up on runs after this many s without one ending"
    )
    parser.add_argument(
        "--stages",
        action="store_true",
        help="also print where each phase's completions went, stage by stage (bench/e2e_stages.py)",
    )
    parser.add_argument("--n8n", metavar="URL", help="also drive this n8n webhook in phases a and b")
    parser.add_argument(
        "--series",
        type=_positive,
        metavar="SECONDS",
        help="also print each paced phase's completions window by window of send time (p50, p99, max)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every figure to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the bench's tenant, workflows and runs")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    args.gateway = args.gateway.rstrip("/")
    try:
        httpx.get(f"{args.gateway}/readyz", timeout=5).raise_for_status()
    except httpx.HTTPError as error:
        raise SystemExit(
            f"the gateway at {args.gateway} does not answer ({error}); start the system with `make up`"
        )
    infra, namespace = infra_from_env(), os.environ.get("MILLRACE_NAMESPACE", "")
    tracked, missing = system_processes(args.data_dir)
    print(f"{machine()}\nprocesses: {', '.join(f'{t.name} {t.pid}' for t in tracked)}", flush=True)
    speed = {"before": host_speed_ms()}
    print(f"host speed: {speed['before']:.0f} ms of CPU for a fixed Python loop (less is faster)", flush=True)
    if missing:
        print(f"not found (no CPU figures): {', '.join(missing)}", flush=True)
    setup = prepare(infra, namespace, args.gateway)
    log = RunLog(infra, namespace)
    bench = Bench(args, setup, log, tracked, Namespace(namespace).topic(RECORDS_EVENTS), {})
    try:
        asyncio.run(run_phases(bench))
    finally:
        if args.keep:
            print(f"\nkept tenant {setup.tenant} (its workflows stay active)")
        else:
            archive(args.gateway, setup)
            print(f"\nremoved tenant {setup.tenant}: {log.remove_tenant(setup.tenant):,} rows")
        log.close()
    speed["after"] = host_speed_ms()
    print(f"host speed: {speed['before']:.0f} ms before the phases, {speed['after']:.0f} ms after")
    if args.json:
        document = {"machine": machine(), "arguments": {k: str(v) for k, v in vars(args).items()}}
        document["host speed ms"] = speed
        document["phases"] = {title: [asdict(f) for f in figures] for title, figures in bench.results.items()}
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
