"""The gateway's outbox: messages are stored in the transaction that makes the change they tell of, and
the relay publishes them, so no request waits for Kafka and none is lost while Kafka is away."""

from __future__ import annotations

from millrace_common.contracts.outgoing import Outgoing
from millrace_common.contracts.topics import Namespace
from millrace_common.platform.outbox import OutboxRelay, enqueue
from sqlalchemy.ext.asyncio import AsyncConnection

from millrace_gateway.settings import PRODUCER


class Outbox:
    def __init__(self, namespace: Namespace, relay: OutboxRelay) -> None:
        self._namespace = namespace
        self._relay = relay

    async def add(self, connection: AsyncConnection, *messages: Outgoing) -> None:
        """Store ``messages`` as this service's outbox rows, in ``connection``'s transaction."""
        await enqueue(connection, self._namespace, PRODUCER, list(messages))

    def wake(self) -> None:
        """Ask the relay to publish now; call it once the transaction has committed."""
        self._relay.wake()
