"""Phase (f) of the end-to-end bench: how well a for_each keeps its slots busy when its body calls a slow
server, and how long one refill takes (result -> Kafka -> orchestrator -> PostgreSQL -> Kafka -> runner).

A workflow ``trigger (manual) -> for_each(trigger.items, max_concurrency) [http_request] -> end`` is made
through the API and run once with ``--items`` items; its one body node calls a server this process runs
on 127.0.0.1 (a free port), which answers each request ``--call-ms`` after it arrived and records when
each request started and ended (``time.monotonic()``). The tenant is let reach 127.0.0.0/8 the way
``millrace-admin allow-networks`` does it. Figures: the run's time (``runs.started_at`` to
``finished_at``) and the server's (first request start to last request end) against the ideal
``items / max_concurrency x call time``; the time-weighted mean of requests in flight between the first
and the last request start (while items remained) as a share of ``max_concurrency`` ("slots busy",
target >= 80%), with the time spent at each level; the gap from each request's end to the next start,
and from the k-th end to the (k + max_concurrency)-th start (the refill that end paid for, when each end
frees one slot); CPU per item and share of a core per process."""

from __future__ import annotations

import asyncio
import time
import uuid
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field

import h11
import httpx
from millrace_common.platform.db import create_engine
from millrace_gateway.service_layer.accounts import allow_networks
from sqlalchemy import text

from bench.common import Figure, edge, node, percentiles, print_figures
from bench.e2e_procs import Tracked, cpu_ms
from tests.support.infra import Infra

LOOPBACK = ["127.0.0.0/8"]


@dataclass(frozen=True)
class Call:
    """One request the server answered: when it arrived and when its answer was written
    (``time.monotonic()``), and when it arrived on the wall clock (Unix seconds)."""

    start: float
    end: float
    start_wall: float


@dataclass
class SlowServer:
    """HTTP/1.1 on 127.0.0.1 (keep-alive, h11 over asyncio streams) answering every request with a small
    JSON body ``delay`` seconds after it arrived."""

    delay: float
    calls: list[Call] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _open: dict[asyncio.StreamWriter, asyncio.Task] = field(default_factory=dict)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._open):  # the runner's keep-alive connections: their handlers end
                writer.close()
            if self._open:
                await asyncio.wait(list(self._open.values()), timeout=2)
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        protocol = h11.Connection(h11.SERVER)
        started = started_wall = 0.0
        self._open[writer] = asyncio.current_task()  # type: ignore[assignment]
        try:
            while True:
                event = protocol.next_event()
                if event is h11.NEED_DATA:
                    protocol.receive_data(await reader.read(65536))
                elif isinstance(event, h11.Request):
                    started, started_wall = time.monotonic(), time.time()
                elif isinstance(event, h11.EndOfMessage):
                    await asyncio.sleep(max(0.0, started + self.delay - time.monotonic()))
                    body = b'{"ok": true}'
                    headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
                    answer = h11.Response(status_code=200, headers=headers)
                    writer.write(
                        b"".join(protocol.send(part) or b"" for part in (answer, h11.Data(data=body)))
                    )
                    writer.write(protocol.send(h11.EndOfMessage()) or b"")
                    await writer.drain()
                    self.calls.append(Call(started, time.monotonic(), started_wall))
                    protocol.start_next_cycle()
                elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                    break
        except (h11.ProtocolError, OSError, asyncio.CancelledError):  # cancelled: the loop is closing
            pass
        finally:
            self._open.pop(writer, None)
            writer.close()


def definition(url: str, concurrency: int) -> dict:
    """``trigger (manual) -> for_each(trigger.items) [http_request GET url/items/<index>] -> end``."""
    return {
        "nodes": [
            node("start", "trigger", 0, kind="manual"),
            node("each", "for_each", 100, items="{{ trigger.items }}", max_concurrency=concurrency),
            node("call", "http_request", 20, parent="each", url=f"{url}/items/{{{{ index }}}}"),
            node("done", "end", 200, output={"count": "{{ nodes.each.output.count }}"}),
        ],
        "edges": [edge("start", "each"), edge("each", "done", "done")],
        "settings": {"max_executions_per_hour": 10_000_000, "retry_count": 0},
    }


async def grant_loopback(infra: Infra, namespace: str, tenant: str) -> None:
    """What ``millrace-admin allow-networks <tenant> 127.0.0.0/8`` does, through the same function."""
    engine = create_engine(infra.settings(namespace))
    try:
        await allow_networks(engine, tenant, LOOPBACK)
    finally:
        await engine.dispose()


# ---- figures ------------------------------------------------------------------------------------


def occupancy(calls: list[Call], window: tuple[float, float]) -> tuple[float, dict[int, float]]:
    """The time-weighted mean of requests in flight over ``window`` and the seconds spent at each level."""
    events = sorted([(c.start, 1) for c in calls] + [(c.end, -1) for c in calls], key=lambda e: (e[0], e[1]))
    low, high = window
    level, at, spent = 0, low, Counter[int]()
    for moment, change in events:
        if moment > at:
            until = min(moment, high)
            if until > at:
                spent[level] += until - at
            at = max(at, min(moment, high))
        level += change
    if high > at:
        spent[level] += high - at
    length = high - low
    mean = sum(lv * s for lv, s in spent.items()) / length if length > 0 else float("nan")
    return mean, dict(spent)


def refill_gaps(calls: list[Call], concurrency: int) -> tuple[list[float], list[float]]:
    """Per request end, the time to the next request start; and the k-th end to the
    (k + concurrency)-th start (seconds), the refill that end made room for."""
    starts = sorted(c.start for c in calls)
    ends = sorted(c.end for c in calls)
    nearest = []
    for end in ends:
        i = bisect_right(starts, end)
        if i < len(starts):
            nearest.append(starts[i] - end)
    paired = [starts[k + concurrency] - end for k, end in enumerate(ends) if k + concurrency < len(starts)]
    return nearest, paired


def distribution(what: str, seconds: list[float], remark: str = "") -> list[Figure]:
    return percentiles(what, [s * 1000 for s in seconds], remark=remark)


def cpu_figures(tracked: list[Tracked], before: dict, after: dict, wall: float, items: int) -> list[Figure]:
    figures, total = [], 0.0
    for t in tracked:
        used = after[t.name] - before[t.name]
        total += used if t.system else 0
        share = f"{used / (wall * 1000):.0%} of a core"
        remark = share if t.system else f"{share}; not in the total"
        remark += "; it also plays the called server" if t.name == "bench client" else ""
        figures.append(Figure(f"CPU {t.name}", used / items, "ms/item", remark))
    figures.append(
        Figure(
            "CPU services + Kafka + PostgreSQL",
            total / items,
            "ms/item",
            f"{total / (wall * 1000):.0%} of a core",
        )
    )
    return figures


def figures_of(
    args, concurrency: int, calls: list[Call], run: tuple[str, float, float | None]
) -> list[Figure]:
    status, run_started, run_finished = run
    call_s, items = args.call_ms / 1000, args.items
    ideal = items / concurrency * call_s
    figures = [
        Figure("run", status, "", f"{items} items, max_concurrency {concurrency}, {args.call_ms:g} ms call"),
        Figure("requests served", len(calls), "", "" if len(calls) == items else f"expected {items}"),
        Figure("ideal", ideal * 1000, "ms", "items / max_concurrency x call time"),
    ]
    if run_finished is not None:
        took = run_finished - run_started
        figures.append(Figure("run time (runs.started_at -> finished_at)", took * 1000, "ms"))
        figures.append(Figure("run time / ideal", took / ideal, "x"))
    if not calls:
        return figures
    first, last_start = min(c.start for c in calls), max(c.start for c in calls)
    last_end = max(c.end for c in calls)
    figures.append(Figure("server time (first start -> last end)", (last_end - first) * 1000, "ms"))
    figures.append(Figure("server time / ideal", (last_end - first) / ideal, "x"))
    first_wall = min(c.start_wall for c in calls)
    figures.append(Figure("run start -> first request", (first_wall - run_started) * 1000, "ms"))
    if run_finished is not None:
        last_wall = max(c.start_wall + (c.end - c.start) for c in calls)
        figures.append(Figure("last answer -> run finished", (run_finished - last_wall) * 1000, "ms"))
    mean, spent = occupancy(calls, (first, last_start))
    figures.append(Figure("requests in flight while items remained", mean, "", "time-weighted mean"))
    figures.append(Figure("slots busy", f"{mean / concurrency:.1%}", "", "target >= 80%"))
    window = last_start - first
    for level in range(max([concurrency, *spent]) + 1):
        seconds = spent.get(level, 0.0)
        share = f"{seconds / window:.1%}" if window > 0 else ""
        figures.append(Figure(f"time at {level} in flight", seconds * 1000, "ms", share))
    nearest, paired = refill_gaps(calls, concurrency)
    figures += distribution("end -> next start", nearest, f"{len(nearest)} ends")
    figures += distribution(f"k-th end -> (k+{concurrency})-th start", paired, "the refill round trip")
    return figures


# ---- the phase ----------------------------------------------------------------------------------


def run_times(log, run_id: uuid.UUID) -> tuple[str, float, float | None]:
    with log.engine.connect() as connection:
        row = connection.execute(
            text("select status, started_at, finished_at from runs where run_id = :id"), {"id": run_id}
        ).first()
    if row is None:
        return "not in the run log", float("nan"), None
    status, started, finished = row
    return status, started.timestamp(), finished.timestamp() if finished else None


async def for_each_refill(bench, infra: Infra, namespace: str, concurrency: int) -> list[Figure]:
    """Runs the loop once at ``concurrency`` and prints and returns its figures."""
    args, setup = bench.args, bench.setup
    server = SlowServer(args.call_ms / 1000)
    await server.start()
    headers = {"Authorization": f"Bearer {setup.token}"}
    api = httpx.AsyncClient(base_url=f"{args.gateway}/api/v1", headers=headers, timeout=30)
    workflow = None
    try:
        await grant_loopback(infra, namespace, setup.tenant)
        body = {"name": f"bench for_each {concurrency}", "definition": definition(server.url, concurrency)}
        answer = await api.post("/workflows", json=body)
        if answer.status_code not in (200, 201):
            raise SystemExit(f"POST /workflows: {answer.status_code} {answer.text}")
        workflow = answer.json()["id"]
        (await api.post(f"/workflows/{workflow}/activate", json={})).raise_for_status()
        before, started = cpu_ms(bench.tracked), time.perf_counter()
        answer = await api.post(
            f"/workflows/{workflow}/runs", json={"input": {"items": list(range(args.items))}}
        )
        if answer.status_code != 202:
            raise SystemExit(f"POST /workflows/{workflow}/runs: {answer.status_code} {answer.text}")
        run_id = uuid.UUID(answer.json()["run_id"])
        patience = args.timeout + 5 * args.items / concurrency * args.call_ms / 1000  # one run, long at 1
        await asyncio.to_thread(bench.log.wait, [run_id], patience)
        wall = time.perf_counter() - started
        after = cpu_ms(bench.tracked)
        run = await asyncio.to_thread(run_times, bench.log, run_id)
    finally:
        if workflow is not None:
            await api.post(f"/workflows/{workflow}/archive")
        await api.aclose()
        await server.stop()
    figures = figures_of(args, concurrency, server.calls, run)
    figures += cpu_figures(bench.tracked, before, after, wall, args.items)
    title = (
        f"(f) for_each refill: {args.items} items, max_concurrency {concurrency}, {args.call_ms:g} ms calls"
    )
    bench.results[title] = figures
    print_figures(title, figures)
    return figures
