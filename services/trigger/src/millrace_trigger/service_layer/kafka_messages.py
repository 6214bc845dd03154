"""Use case: a polled batch of messages on granted Kafka topics starts the runs their Kafka triggers
ask for. The candidates are read in the batch's transaction, so a trigger paused or a grant revoked a
moment ago starts nothing more."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from millrace_common.platform.consuming import Delivery
from millrace_common.platform.pg import Statements

from millrace_trigger.domain.firings import Firing
from millrace_trigger.domain.kafka_messages import ConsumedMessage, KafkaCandidate, match_message
from millrace_trigger.service_layer.firings import ConsumerShell


class KafkaMessageHandler:
    def __init__(self, shell: ConsumerShell) -> None:
        self._shell = shell

    async def candidates(self) -> list[KafkaCandidate]:
        """Every active Kafka trigger on a granted topic (what the consumer subscribes to)."""
        async with self._shell.transaction() as connection:
            return await self._shell.store.kafka_candidates(connection)

    async def handle(self, deliveries: Sequence[Delivery[Any]]) -> None:
        shell = self._shell
        async with shell.transaction() as connection:
            now = shell.clock.now()
            fresh = await shell.unhandled(connection, deliveries)
            firings = await self._decide(connection, [d.message for d in fresh], now)
            sent = await shell.ledger.send(connection, firings, now)
        await shell.publish(await sent.settled(), "kafka")

    async def _decide(
        self, connection: Statements, messages: Sequence[ConsumedMessage], now: Any
    ) -> list[Firing]:
        if not messages:
            return []
        candidates = await self._shell.store.kafka_candidates(connection)
        return [f for message in messages for f in match_message(message, candidates, now=now)]
