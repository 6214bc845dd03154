"""The orchestrator's run log against real PostgreSQL (``PostgresRunLog`` under the shell): a batch
whose runs are all cached (or started by it) is decided on those states and written in one statement
that checks them. When the check fails (another writer moved a run on, a workflow is at its limit, a
message was handled before) nothing is written, and the batch is read and decided again on what the
database holds. A database without the check's function stops the orchestrator at start."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any
from uuid import UUID

import pytest
from millrace_common.contracts.messages.node_commands import NodeError, NodeFailedResult, NodeSucceededResult
from millrace_common.contracts.messages.run_commands import FireTimer, StartRun, TriggerData
from millrace_common.contracts.topics import Namespace
from millrace_common.platform.live_relay import LiveRelay
from millrace_common.platform.pg import DirectConnections
from millrace_common.platform.settings import ServiceSettings
from millrace_orchestrator.adapters.run_log import MissingMigration, PostgresRunLog
from millrace_orchestrator.domain.decide import Message
from millrace_orchestrator.service_layer.runs import RunMessages
from sqlalchemy import Engine, create_engine, text

from tests.support.infra import Infra
from tests.support.processes import System
from tests.support.workflows import insert_workflow as support_insert_workflow

pytestmark = pytest.mark.integration
TENANT = "batches"


@pytest.fixture
def db(infra: Infra, namespace: str) -> Iterator[Engine]:
    engine = create_engine(infra.database_url, connect_args={"options": f"-csearch_path={namespace}"})
    yield engine
    engine.dispose()


def node(node_id: str, node_type: str, **data: Any) -> dict:
    return {"id": node_id, "type": node_type, "position": {"x": 0, "y": 0}, "data": {"name": node_id, **data}}


def edge(source: str, target: str) -> dict:
    return {"id": f"{source}-{target}", "source": source, "target": target}


def chain(*nodes: dict, **settings: Any) -> dict:
    everything = [node("start", "trigger", kind="manual"), *nodes]
    edges = [edge(a["id"], b["id"]) for a, b in itertools.pairwise(everything)]
    return {"nodes": everything, "edges": edges, "settings": settings}


def insert_workflow(db: Engine, definition: dict) -> tuple[UUID, int]:
    return support_insert_workflow(db, TENANT, definition)


def start(workflow: tuple[UUID, int], run_id: UUID | None = None) -> StartRun:
    run_id = run_id or uuid.uuid4()
    return StartRun(
        tenant_id=TENANT,
        run_id=run_id,
        workflow_id=workflow[0],
        workflow_version=workflow[1],
        trigger=TriggerData(kind="manual"),
        idempotency_key=str(run_id),
    )


def log_types(db: Engine, run_id: UUID) -> list[str]:
    with db.connect() as connection:
        rows = connection.execute(
            text("select type from run_events where run_id = :r order by seq"), {"r": run_id}
        )
        return [row.type for row in rows]


def throttle_reason(db: Engine, run_id: UUID) -> str:
    with db.connect() as connection:
        return connection.execute(
            text("select payload->>'reason' from run_events where run_id = :r and type = 'run.throttled'"),
            {"r": run_id},
        ).scalar_one()


class Orchestrator:
    """The shell on a run log with a state cache of its own (one instance of the orchestrator),
    recording the path each batch took."""

    def __init__(self, stack: AsyncExitStack, infra: Infra, namespace: str) -> None:
        settings = ServiceSettings(
            service_name="orchestrator",
            namespace=namespace,
            database_url=infra.database_url,
            kafka_bootstrap=infra.kafka_bootstrap,
        )
        direct = DirectConnections(settings)
        stack.push_async_callback(direct.close)
        relay = LiveRelay(settings, direct, "orchestrator")  # not started: handed-over rows stay queued
        self.relay = relay
        self.paths: list[str] = []
        self.rejected: list[str] = []
        self.run_log = PostgresRunLog(direct, Namespace(namespace), relay.tag)
        self._runs = RunMessages(self.run_log, relay, count_batch=self.paths.append)

    async def handle(self, *messages: Message) -> list[str]:
        """The paths the batch took."""
        before = len(self.paths)

        async def reject(message: Message, reason: str) -> None:
            self.rejected.append(reason)

        await self._runs.handle(list(messages), reject)
        return self.paths[before:]


def scenario(
    infra: Infra, namespace: str, body: Callable[[Callable[[], Orchestrator]], Awaitable[None]]
) -> None:
    async def main() -> None:
        async with AsyncExitStack() as stack:
            await body(lambda: Orchestrator(stack, infra, namespace))

    asyncio.run(main())


def test_runs_in_the_cache_are_written_without_a_read_and_a_run_another_instance_moved_on_is_read_again(
    infra: Infra, namespace: str, db: Engine
):
    """The stale instance's state says attempt 1 of ``call`` is current, so on that state the result
    of attempt 2 is stale and changes nothing: written like that, the result would be claimed and
    lost. The check sees the log has grown past the cached state and the batch is read again."""
    workflow = insert_workflow(
        db,
        chain(
            node(
                "call",
                "http_request",
                url="http://example.test/x",
                retry={"max_attempts": 2, "backoff_seconds": 0.1},
            ),
            node("done", "end"),
        ),
    )
    run_id = uuid.uuid4()

    async def body(instance: Callable[[], Orchestrator]) -> None:
        first, second = instance(), instance()
        assert await first.handle(start(workflow, run_id)) == ["read"], "the definition is not loaded yet"
        other = uuid.uuid4()
        assert await first.handle(start(workflow, other)) == ["cached"]
        failed = NodeError(type="http_error", message="503", retryable=True)
        result = NodeFailedResult(
            tenant_id=TENANT, run_id=run_id, node_id="call", attempt=1, error=failed, duration_ms=3
        )
        assert await second.handle(result) == ["read"]
        with db.connect() as connection:
            timer_id = connection.execute(
                text("select timer_id from timers where run_id = :r and purpose = 'retry'"), {"r": run_id}
            ).scalar_one()
        assert await second.handle(FireTimer(tenant_id=TENANT, run_id=run_id, timer_id=timer_id)) == [
            "cached"
        ]
        succeeded = NodeSucceededResult(
            tenant_id=TENANT, run_id=run_id, node_id="call", attempt=2, output={"ok": True}, duration_ms=3
        )
        assert await first.handle(succeeded) == ["cached_refused", "read"]
        assert log_types(db, run_id)[-1] == "run.completed"
        # The refused write left no rows, and nothing of it was handed to the relay.
        for orchestrator in (first, second):
            handed = [i for ids, _ in orchestrator.relay._pending for i in ids]
            assert len(handed) == len(set(handed))
        handed = {i for o in (first, second) for ids, _ in o.relay._pending for i in ids}
        with db.connect() as connection:
            assert set(connection.execute(text("select id from outbox")).scalars()) == handed
        # The other run, untouched by the second instance, is still written from the cache.
        late = NodeSucceededResult(
            tenant_id=TENANT, run_id=other, node_id="call", attempt=1, output={}, duration_ms=3
        )
        assert await first.handle(late) == ["cached"]
        assert log_types(db, other)[-1] == "run.completed"

    scenario(infra, namespace, body)


def timer_of(db: Engine, run_id: UUID, purpose: str) -> UUID:
    with db.connect() as connection:
        return connection.execute(
            text("select timer_id from timers where run_id = :r and purpose = :p"),
            {"r": run_id, "p": purpose},
        ).scalar_one()


def test_starts_that_fit_under_max_concurrent_runs_are_written_from_the_cache_and_one_beyond_is_throttled(
    infra: Infra, namespace: str, db: Engine
):
    workflow = insert_workflow(
        db,
        chain(node("wait", "wait_delay", duration_seconds=600), node("done", "end"), max_concurrent_runs=2),
    )
    first, second, third, fourth = (start(workflow) for _ in range(4))

    async def body(instance: Callable[[], Orchestrator]) -> None:
        orchestrator = instance()
        assert await orchestrator.handle(first) == ["read"], "the definition is not loaded yet"
        assert await orchestrator.handle(second) == ["cached"], "two running: the limit, not beyond it"
        assert await orchestrator.handle(third) == ["cached_refused", "read"]
        # A run that ends in the same batch makes room for a start after it, as the read path counts.
        fire = FireTimer(tenant_id=TENANT, run_id=first.run_id, timer_id=timer_of(db, first.run_id, "delay"))
        assert await orchestrator.handle(fire, fourth) == ["cached"]

    scenario(infra, namespace, body)
    assert log_types(db, third.run_id) == ["run.throttled"]
    assert throttle_reason(db, third.run_id) == "max_concurrent_runs reached: 2 runs are running"
    assert log_types(db, first.run_id)[-1] == "run.completed"
    assert log_types(db, fourth.run_id)[0] == "run.started"


def test_a_batch_whose_starts_cross_max_executions_per_hour_is_read_and_throttled_from_the_limit_on(
    infra: Infra, namespace: str, db: Engine
):
    workflow = insert_workflow(db, chain(node("done", "end"), max_executions_per_hour=3))
    early, *batch = (start(workflow) for _ in range(4))

    async def body(instance: Callable[[], Orchestrator]) -> None:
        orchestrator = instance()
        assert await orchestrator.handle(early) == ["read"]
        assert await orchestrator.handle(*batch) == ["cached_refused", "read"], "1 + 3 starts > 3 an hour"

    scenario(infra, namespace, body)
    assert [log_types(db, s.run_id)[0] for s in batch] == ["run.started", "run.started", "run.throttled"]
    assert (
        throttle_reason(db, batch[-1].run_id)
        == "max_executions_per_hour reached: 3 runs started in the last hour"
    )


def test_a_message_handled_before_fails_the_check_and_is_skipped_while_the_rest_of_its_batch_is_written(
    infra: Infra, namespace: str, db: Engine
):
    workflow = insert_workflow(
        db, chain(node("wait", "wait_delay", duration_seconds=600), node("done", "end"))
    )
    again, fresh = start(workflow), start(workflow)

    async def body(instance: Callable[[], Orchestrator]) -> None:
        orchestrator = instance()
        await orchestrator.handle(again)
        assert await orchestrator.handle(again, fresh) == ["cached_refused", "read"]
        assert orchestrator.rejected == []

    scenario(infra, namespace, body)
    assert log_types(db, again.run_id).count("run.started") == 1
    assert log_types(db, fresh.run_id)[0] == "run.started"


def test_without_the_check_function_the_orchestrator_refuses_to_start_and_names_the_migration(
    infra: Infra, namespace: str, db: Engine, system: System
):
    """A database not migrated to 0008: there is no second way to write a batch, so the orchestrator
    says what to run instead of starting (before it consumes anything)."""
    with db.begin() as connection:
        connection.execute(text("drop function millrace_ensure(boolean, text)"))

    async def body(instance: Callable[[], Orchestrator]) -> None:
        with pytest.raises(MissingMigration, match=r"millrace_ensure \(migration 0008\)"):
            await instance().run_log.require_migrations()

    scenario(infra, namespace, body)
    with pytest.raises(RuntimeError, match=r"millrace_ensure \(migration 0008\): run millrace-migrate"):
        system.start(("orchestrator",))
