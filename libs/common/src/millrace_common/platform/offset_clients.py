"""The two Kafka clients that read a group's committed offsets and its partitions' end offsets (the lag
gauge and the readiness watch each keep a pair): made on first use, dropped on any error so the next
use makes them afresh (a client whose broker connection broke does not always recover)."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from millrace_common.platform.fetch_wait import FETCHER_TIMEOUT_MS
from millrace_common.platform.kafka_security import client_options
from millrace_common.platform.settings import KafkaClientSettings


class OffsetClients:
    def __init__(self, kafka: KafkaClientSettings, client_id: str, *, request_timeout_ms: int) -> None:
        self._kafka = kafka
        self._client_id = client_id
        self._timeout_ms = request_timeout_ms
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None

    async def get(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._offsets is None:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self._kafka.kafka_bootstrap,
                **client_options(self._kafka),
                client_id=self._client_id,
                request_timeout_ms=self._timeout_ms,
            )
            # No group: this consumer only asks for metadata and partitions' first and end offsets.
            offsets = AIOKafkaConsumer(
                bootstrap_servers=self._kafka.kafka_bootstrap,
                **client_options(self._kafka),
                client_id=self._client_id,
                enable_auto_commit=False,
                request_timeout_ms=self._timeout_ms,
                consumer_timeout_ms=FETCHER_TIMEOUT_MS,
            )
            await admin.start()
            try:
                await offsets.start()
            except Exception:
                await admin.close()
                raise
            self._admin, self._offsets = admin, offsets
        return self._admin, self._offsets

    async def close(self) -> None:
        admin, offsets = self._admin, self._offsets
        self._admin = self._offsets = None
        if offsets is not None:
            await offsets.stop()
        if admin is not None:
            await admin.close()
