"""An outbox relay whose Kafka producer never answers does not hang: past its acknowledgement time the
pass fails as an outage, its rows stay in the outbox (their lock released), and a later pass whose
sends are acknowledged publishes them."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka.errors import KafkaTimeoutError
from millrace_common.platform.db import create_engine
from millrace_common.platform.outbox import OutboxRelay
from millrace_common.platform.settings import ServiceSettings

from tests.integration.test_live_relay import insert_row, rows_left
from tests.support.infra import Infra

pytestmark = pytest.mark.integration


class SilentThenAnswering:
    """A broker whose sends are never acknowledged until ``answer`` is set."""

    def __init__(self) -> None:
        self.answer = False
        self.sent: list[bytes] = []

    async def publish(
        self, value: bytes, *, topic: str, key: bytes | None, **_: object
    ) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.answer:
            self.sent.append(value)
            future.set_result(None)
        return future


def test_a_send_never_acknowledged_fails_the_pass_in_time_and_the_rows_go_out_later(
    infra: Infra, namespace: str
):
    settings = ServiceSettings(
        service_name="outbox-test", namespace=namespace, database_url=infra.database_url
    )
    insert_row(infra, namespace, "silent", b"one", age_seconds=0)

    async def scenario() -> tuple[float, list[bytes]]:
        engine = create_engine(settings)
        broker = SilentThenAnswering()
        relay = OutboxRelay(engine, broker, "silent", ack_timeout_seconds=0.5)  # type: ignore[arg-type]
        try:
            started = time.monotonic()
            with pytest.raises(KafkaTimeoutError):
                await relay.publish_pending()
            waited = time.monotonic() - started
            broker.answer = True
            assert await relay.publish_pending() == 1
            return waited, broker.sent
        finally:
            await engine.dispose()

    waited, sent = asyncio.run(scenario())
    assert waited < 10, f"the pass waited {waited:.1f} s for an acknowledgement that never came"
    assert sent == [b"one"]
    assert rows_left(infra, namespace) == set()
