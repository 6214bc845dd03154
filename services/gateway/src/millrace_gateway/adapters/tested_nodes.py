"""Running a node with side effects for a test (``execute_side_effects``): the gateway sends the
node's command to its runner's topic, marked ``test``, and awaits the result the runner sends back on
``nodes.test_results``; the orchestrator sees neither. Every gateway process follows that topic from
its end without a consumer group (any of them may be the one awaiting a result), and the result is
matched by its ``causation_id``, the command's id."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from aiokafka import ConsumerRecord
from millrace_common.contracts.messages.node_commands import (
    NODE_RESULT,
    ExecuteNode,
    NodeFailedResult,
    NodeSucceededResult,
)
from millrace_common.contracts.topics import NODES_TEST_RESULTS, Namespace, Topic
from millrace_common.platform.consumer_watch import Membership
from millrace_common.platform.consuming import Decoder, Delivery
from millrace_common.platform.producer import Producer
from millrace_common.platform.settings import KafkaClientSettings
from millrace_common.platform.tailing import TailConsumer

log = logging.getLogger(__name__)

TestResult = NodeSucceededResult | NodeFailedResult


class TestedNodes:
    def __init__(
        self, kafka: KafkaClientSettings, producer: Producer, namespace: Namespace, *, client_id: str
    ) -> None:
        self._producer = producer
        self._namespace = namespace
        self._waiting: dict[UUID, asyncio.Future[TestResult]] = {}
        self._tail = TailConsumer(
            kafka,
            client_id,
            Decoder(namespace, {NODES_TEST_RESULTS: NODE_RESULT}, unreadable=self._unreadable),
            self._answered,
        )

    @property
    def membership(self) -> Membership:
        return self._tail.membership

    async def run(self) -> None:
        await self._tail.run()

    async def execute(self, topic: Topic, command: ExecuteNode, *, wait_seconds: float) -> TestResult | None:
        """Send ``command`` and return its result, or None when none came within ``wait_seconds``."""
        try:  # following the topic before sending, so no answer is missed
            await asyncio.wait_for(self._tail.ready.wait(), timeout=wait_seconds)
        except TimeoutError:
            return None
        answer: asyncio.Future[TestResult] = asyncio.get_running_loop().create_future()
        self._waiting[command.message_id] = answer
        try:
            await self._producer.publish(
                command.to_bytes(), topic=self._namespace.topic(topic), key=str(command.run_id).encode()
            )
            return await asyncio.wait_for(answer, timeout=wait_seconds)
        except TimeoutError:
            return None
        finally:
            self._waiting.pop(command.message_id, None)

    async def _answered(self, deliveries: Sequence[Delivery[Any]]) -> None:
        for delivery in deliveries:
            result: TestResult = delivery.message
            answer = self._waiting.get(result.causation_id) if result.causation_id else None
            if answer is not None and not answer.done():
                answer.set_result(result)

    def _unreadable(self, record: ConsumerRecord, reason: str) -> None:
        log.warning(
            "tested nodes: unreadable result",
            extra={"ids": {"offset": record.offset, "reason": reason[:300]}},
        )
