"""Where a phase's completions went, stage by stage (``bench/e2e.py --stages``), read after the phase
from what the system records anyway, so nothing in the services changes to be measured:

- *sent*: the client's clock just before the call or the event went out;
- *received* (webhook calls): ``webhook_deliveries.received_at``, the gateway's clock once its handler
  ran; *answered*: sent plus the 202's round trip at the client, after the gateway's group commit;
- *matched* (record events): ``runs.started_at``, the trigger service's clock once it matched the
  event and made the run's StartRun;
- *StartRun out*: the create time of the run's ``run.start`` on ``runs.commands``, when the starter's
  relay handed it to its Kafka producer (after the commit that made it durable);
- *decided*: ``runs.finished_at``, the orchestrator's clock in the batch that ended the run (this
  shape runs start to end in the batch that reads its StartRun, so this is also when that batch began
  deciding); the completion the bench reports ends here;
- *ended out*: the create time of the run's ``run.completed`` on ``runs.events``, when the
  orchestrator's relay handed it over, after the batch's write committed.

Every clock is this machine's. For each step between two of them: p50, p99, and the median of that
step in the slowest 1 % of completions, which says where a tail comes from (a step whose median in the
tail is near its p50 did not make the tail)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer
from sqlalchemy import Engine, text

from bench.common import Figure, median, percentile
from tests.support.kafka import kafka_client

TAIL_SHARE = 0.01
"""The slowest share of completions whose steps are shown apart."""

READ_FROM_BEFORE_S = 5.0
"""Kafka is read from this long before the phase's first send: a producer's clock may lag ours a
little, and a record's create time is its producer's."""


@dataclass(frozen=True)
class Mark:
    """One run's moments, Unix seconds (``None``: not found)."""

    sent: float
    received: float | None
    answered: float | None
    started: float | None
    start_out: float | None
    decided: float | None
    ended_out: float | None


Step = tuple[str, str, str]
"""A step's label and the two moments (``Mark`` fields) it lies between."""

HOOK_STEPS: tuple[Step, ...] = (
    ("sent -> received", "sent", "received"),
    ("received -> answered", "received", "answered"),
    ("received -> StartRun out", "received", "start_out"),
    ("StartRun out -> decided", "start_out", "decided"),
    ("decided -> ended out", "decided", "ended_out"),
)
RECORD_STEPS: tuple[Step, ...] = (
    ("sent -> matched", "sent", "started"),
    ("matched -> StartRun out", "started", "start_out"),
    ("StartRun out -> decided", "start_out", "decided"),
    ("decided -> ended out", "decided", "ended_out"),
)


def stage_figures(marks: Sequence[Mark], hooks: bool) -> list[Figure]:
    """Per step: p50 and p99 over the runs that have both ends, and its median among the slowest
    ``TAIL_SHARE`` of completions (sent -> decided)."""
    complete = [m for m in marks if m.decided is not None]
    if not complete:
        return []
    complete.sort(key=lambda m: m.decided - m.sent)  # type: ignore[operator]
    tail = complete[-max(1, round(len(complete) * TAIL_SHARE)) :]
    tail_from = (tail[0].decided - tail[0].sent) * 1000  # type: ignore[operator]
    figures = []
    for label, start, end in HOOK_STEPS if hooks else RECORD_STEPS:
        every, slowest = _spans(complete, start, end), _spans(tail, start, end)
        if not every:
            continue
        remark = f"p99 {percentile(every, 0.99):,.1f}; slowest {len(tail)} (>= {tail_from:,.0f} ms): "
        remark += f"median {median(slowest):,.1f}, max {max(slowest, default=float('nan')):,.1f}"
        if len(every) < len(complete):
            remark += f"; {len(complete) - len(every)} of {len(complete)} runs lack a moment of it"
        figures.append(Figure(f"{label} p50", percentile(every, 0.5), "ms", remark))
    return figures


WORST_WINDOWS = 3
"""How many windows of send time ``worst_windows`` shows apart."""


def worst_windows(marks: Sequence[Mark], width: float, hooks: bool) -> list[Figure]:
    """The ``WORST_WINDOWS`` windows of ``width`` seconds of send time with the highest completion p99,
    each with every step's median among that window's slowest 5 %: a stall that lasts a second shows
    here even when the phase's p99 hides it, and so does the step it held up."""
    complete = [m for m in marks if m.decided is not None]
    if not complete or width <= 0:
        return []
    first = min(m.sent for m in complete)
    cut: dict[int, list[Mark]] = {}
    for mark in complete:
        cut.setdefault(int((mark.sent - first) // width), []).append(mark)

    def p99(window: list[Mark]) -> float:
        return percentile([(m.decided - m.sent) * 1000 for m in window], 0.99)  # type: ignore[operator]

    figures = []
    for index, window in sorted(cut.items(), key=lambda item: -p99(item[1]))[:WORST_WINDOWS]:
        window.sort(key=lambda m: m.decided - m.sent)  # type: ignore[operator]
        slowest = window[-max(1, round(len(window) * 0.05)) :]
        steps = []
        for label, start, end in HOOK_STEPS if hooks else RECORD_STEPS:
            spans = _spans(slowest, start, end)
            if spans:
                steps.append(f"{label} {median(spans):,.1f}")
        at = datetime.fromtimestamp(first + index * width, UTC).strftime("%H:%M:%S")
        remark = f"from {at} UTC, {len(window)} sent; slowest {len(slowest)}: " + ", ".join(steps)
        figures.append(
            Figure(f"{index * width:g}-{(index + 1) * width:g} s: completion p99", p99(window), "ms", remark)
        )
    return figures


def _spans(marks: Sequence[Mark], start: str, end: str) -> list[float]:
    spans = []
    for mark in marks:
        begun, ended = getattr(mark, start), getattr(mark, end)
        if begun is not None and ended is not None:
            spans.append((ended - begun) * 1000)
    return spans


def run_moments(engine: Engine, run_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple]:
    """``(received, started, decided)`` per run from the database (Unix seconds or ``None``)."""
    query = text(
        "select r.run_id, d.received_at, r.started_at, r.finished_at from runs r"
        " left join webhook_deliveries d on d.run_id = r.run_id where r.run_id = any(:ids)"
    )
    with engine.connect() as connection:
        rows = connection.execute(query, {"ids": run_ids}).all()
    return {run_id: tuple(t.timestamp() if t else None for t in times) for run_id, *times in rows}


READ_FOR_AT_MOST_S = 30.0
"""How long ``created_times`` reads for runs it has not found yet: a run's ``run.completed`` reaches
Kafka a moment after its ``runs.finished_at`` is committed, so the end of the topic moves while it
reads."""


async def created_times(
    bootstrap: str, topic: str, kind: str, since: float, run_ids: set[uuid.UUID]
) -> dict[uuid.UUID, float]:
    """The create time (Unix seconds) of the first message of type ``kind`` per run in ``run_ids`` on
    ``topic``, read by a consumer of no group from ``since`` until every run is found or
    ``READ_FOR_AT_MOST_S`` pass; runs not found are absent."""
    consumer = AIOKafkaConsumer(topic, **kafka_client(bootstrap), enable_auto_commit=False)
    await consumer.start()
    found: dict[uuid.UUID, float] = {}
    try:
        for _ in range(200):  # with no group, it takes every partition once it has the topic's metadata
            if partitions := sorted(consumer.assignment()):
                break
            await asyncio.sleep(0.05)
        else:
            raise SystemExit(f"no partitions of {topic} on {bootstrap} in 10 s")
        starts = await consumer.offsets_for_times({p: int(since * 1000) for p in partitions})
        reading = [p for p in partitions if starts[p] is not None]
        for p in reading:
            consumer.seek(p, starts[p].offset)
        marker = kind.encode()
        deadline = time.monotonic() + READ_FOR_AT_MOST_S
        while reading and len(found) < len(run_ids) and time.monotonic() < deadline:
            batch = await consumer.getmany(*reading, timeout_ms=500, max_records=20_000)
            for records in batch.values():
                for record in records:
                    if marker not in record.value:  # most messages are of other types: not parsed
                        continue
                    message = json.loads(record.value)
                    if message.get("type") == kind and (run_id := uuid.UUID(message["run_id"])) in run_ids:
                        found.setdefault(run_id, record.timestamp / 1000)
    finally:
        await consumer.stop()
    return found


async def marks_of(
    engine: Engine,
    bootstrap: str,
    topics: tuple[str, str],
    sent: Sequence[tuple[uuid.UUID, float, float]],
) -> list[Mark]:
    """Each run's moments: ``sent`` holds ``(run_id, send time, answer latency or None)``;
    ``topics`` is (``runs.commands``, ``runs.events``) as named in this namespace."""
    ids = [run_id for run_id, _, _ in sent]
    since = min(at for _, at, _ in sent) - READ_FROM_BEFORE_S
    moments = await asyncio.to_thread(run_moments, engine, ids)
    wanted = set(ids)
    start_out, ended_out = await asyncio.gather(
        created_times(bootstrap, topics[0], "run.start", since, wanted),
        created_times(bootstrap, topics[1], "run.completed", since, wanted),
    )
    marks = []
    for run_id, at, latency in sent:
        received, started, decided = moments.get(run_id, (None, None, None))
        answered = at + latency if latency is not None else None
        marks.append(
            Mark(at, received, answered, started, start_out.get(run_id), decided, ended_out.get(run_id))
        )
    return marks
