"""The node runner's code node against the real broker: commands on ``nodes.ready.code`` run in the
sandbox; hostile code fails its node with its documented type in bounded time while the runner keeps
answering the next command; a command marked ``test`` (testing a node from the editor) is answered on
``nodes.test_results`` and never on ``nodes.results``."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from millrace_common.contracts.messages.node_commands import NODE_RESULT, NodeSucceededResult
from millrace_common.contracts.topics import NODES_TEST_RESULTS, Namespace

from tests.integration.test_node_runner_nodes import (  # noqa: F401  (fixtures)
    Runner,
    TopicReader,
    failure,
    runner,
    runner_process,
)
from tests.support.kafka import partitions_of

pytestmark = pytest.mark.integration


def code(body: str) -> str:
    return "def main():\n" + "".join(f"    {line}\n" for line in body.splitlines())


async def test_a_code_node_runs_over_its_context_with_the_clock_at_its_command(runner: Runner):  # noqa: F811
    tenant = await runner.tenant(loopback=False)
    source = "from datetime import datetime\n" + code(
        'return {"total": sum(i["n"] for i in trigger["items"]), "now": datetime.now().isoformat()}'
    )
    command = runner.command(
        tenant, "code", {"code": source, "context": {"trigger": {"items": [{"n": 2}, {"n": 5}]}}}
    )
    await runner.send(command)
    result = await runner.result_of(command)
    assert isinstance(result, NodeSucceededResult), result
    assert result.output["result"]["total"] == 7
    assert result.output["result"]["now"].startswith(command.occurred_at.strftime("%Y-%m-%dT%H:%M:%S"))


HOSTILE = [
    ("return str(().__class__.__subclasses__())", "code_error"),
    ("import os\nreturn os.listdir('/')", "code_forbidden"),
    ("while True:\n    pass", "code_timeout"),
    ("return 10 ** 10 ** 8", "code_memory_limit"),
    ("return main()", "code_recursion_limit"),
    ("return 'x' * 400000", "code_output"),
]


async def test_hostile_code_fails_each_in_bounded_time_and_the_runner_answers_the_next(runner: Runner):  # noqa: F811
    tenant = await runner.tenant(loopback=False)
    commands = [
        runner.command(tenant, "code", {"code": code(body)}, timeout_seconds=30) for body, _ in HOSTILE
    ]
    healthy = runner.command(tenant, "code", {"code": code("return 1")})
    started = time.monotonic()
    for command in (*commands, healthy):
        await runner.send(command)
    results = await asyncio.gather(*(runner.result_of(c, timeout=60) for c in (*commands, healthy)))
    # Two sandbox workers, each breach within its 2 s budget plus a second of grace.
    assert time.monotonic() - started < 45
    assert [failure(r)[0] for r in results[:-1]] == [expected for _, expected in HOSTILE]
    assert isinstance(results[-1], NodeSucceededResult) and results[-1].output["result"] == 1


async def test_a_tested_nodes_result_goes_to_the_test_results_and_not_to_the_orchestrator(runner: Runner):  # noqa: F811
    system = runner.system
    name = Namespace(system.namespace).topic(NODES_TEST_RESULTS)
    answers = TopicReader(
        system.infra.kafka_bootstrap,
        name,
        len(await partitions_of(system.infra.kafka_bootstrap, name)),
        NODE_RESULT.validate_json,
    )
    await answers.start()
    try:
        tenant = await runner.tenant(loopback=False)
        run_id = uuid.uuid4()
        tested = runner.command(tenant, "code", {"code": code("return 'tested'")}, run_id=run_id, test=True)
        after = runner.command(tenant, "code", {"code": code("return 'run'")}, run_id=run_id)
        await runner.send(tested)
        await runner.send(after)
        (answer,) = await answers.wait_for(lambda r: r.causation_id == tested.message_id)
        assert answer.test and answer.output["result"] == "tested"
        await runner.result_of(after)  # the same run's next command came through nodes.results ...
        assert not [r for r in runner.results.seen if r.causation_id == tested.message_id]  # ... this did not
    finally:
        await answers.stop()
