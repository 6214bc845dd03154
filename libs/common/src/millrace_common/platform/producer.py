"""The process's Kafka producer: aiokafka's, idempotent, waiting for all in-sync replicas, lingering
``MILLRACE_KAFKA_LINGER_MS`` (0), partitioning by key as the Java client does.

Each service publishes through one :class:`Producer` (node results, dead letters, the outbox relays'
passes, the gateway's tested nodes); the live relays keep producers of their own (they build whole
record batches). It is aiokafka's producer with nothing between: FastStream's broker held it before,
and cost each process about 4 MB of resident memory (its modules, and ``unittest.mock`` and
OpenTelemetry's conventions, which it imports), an admin connection for its readiness ping, and two
headers (``content-type``, ``correlation_id``) on every message, which no consumer here reads.
``docs/architecture.md`` ("Kafka clients") says more."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from aiokafka.structs import RecordMetadata

from millrace_common.contracts.topics import producer_max_request_bytes
from millrace_common.platform.kafka import key_partitioner
from millrace_common.platform.kafka_security import client_options
from millrace_common.platform.settings import ServiceSettings


def kafka_producer(settings: ServiceSettings, *, client_id: str, **options: Any) -> AIOKafkaProducer:
    """An aiokafka producer as every part of the platform makes one: idempotent, ``acks=all``, the key
    partitioner (remembering each key's partition), the size limit, the security options, lingering
    ``MILLRACE_KAFKA_LINGER_MS``, unless ``options`` say otherwise."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        **client_options(settings),
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        max_request_size=producer_max_request_bytes(settings.kafka_max_message_bytes),
        **{"linger_ms": settings.kafka_linger_ms, "partitioner": key_partitioner, **options},
    )


STOP_SECONDS = 10.0
"""How long a stop waits for messages still in flight before it gives up on them."""

log = logging.getLogger(__name__)


class ProducerNotStarted(KafkaConnectionError):
    """A publish before :meth:`Producer.start` or after :meth:`Producer.stop`: Kafka cannot be
    reached from here, an outage to wait out (``outages.unreachable_dependency``), never a refusal of
    the message."""


class Producer:
    """One aiokafka producer for the process, started and stopped with it (``service.Operations``)."""

    def __init__(self, settings: ServiceSettings, *, client_id: str | None = None) -> None:
        self._settings = settings
        self._client_id = client_id or f"millrace-{settings.service_name}"
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        producer = kafka_producer(self._settings, client_id=self._client_id)
        await producer.start()
        self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            # An idempotent producer never expires a batch: with Kafka away, its stop would wait for
            # good. What is still in flight is sent again by whoever owns it (an outbox row stays, an
            # unacknowledged command is redelivered).
            await asyncio.wait_for(producer.stop(), timeout=STOP_SECONDS)
        except TimeoutError:
            log.warning("the Kafka producer stopped with messages unacknowledged after %s s", STOP_SECONDS)

    async def publish(
        self,
        value: bytes,
        *,
        topic: str,
        key: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        no_confirm: bool = False,
    ) -> RecordMetadata | asyncio.Future[RecordMetadata]:
        """Send ``value``; with ``no_confirm``, return as soon as it is in a record batch, with the
        future of its acknowledgement, else wait for the acknowledgement."""
        producer = self._producer
        if producer is None:
            raise ProducerNotStarted(f"the Kafka producer is not running; nothing was sent to {topic}")
        encoded = [(name, text.encode()) for name, text in headers.items()] if headers else None
        sent = await producer.send(topic, value=value, key=key, headers=encoded)
        return sent if no_confirm else await sent

    async def ping(self, timeout: float) -> bool:
        """Whether a broker answers a metadata request (for the topics this producer has used)
        within ``timeout`` seconds."""
        producer = self._producer
        if producer is None:
            return False
        try:
            return bool(await asyncio.wait_for(producer.client.force_metadata_update(), timeout=timeout))
        except Exception:
            return False
