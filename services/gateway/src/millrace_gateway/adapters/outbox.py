"""The gateway's outbox: messages are stored in the transaction that makes the change they tell of, and
the relay publishes them, so no request waits for Kafka and none is lost while Kafka is away."""

from __future__ import annotations

from millrace_common.contracts.outgoing import Outgoing
from millrace_common.contracts.topics import Namespace
from millrace_common.platform.outbox import OutboxRelay, enqueue
from sqlalchemy.ext.asyncio import AsyncConnection

from millrace_gateway.settings import PRODUCER


class Outbox:
    """The gateway's rows, and its record events under the name every service writes them with
    (``RECORDS_PRODUCER``): two relays, both woken after a commit."""

    def __init__(self, namespace: Namespace, *relays: OutboxRelay) -> None:
        self._namespace = namespace
        self._relays = relays

    async def add(self, connection: AsyncConnection, *messages: Outgoing) -> None:
        """Store ``messages`` as outbox rows, in ``connection``'s transaction."""
        await enqueue(connection, self._namespace, PRODUCER, list(messages))

    def wake(self) -> None:
        """Ask the relays to publish now; call it once the transaction has committed."""
        for relay in self._relays:
            relay.wake()
