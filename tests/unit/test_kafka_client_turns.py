"""Between batches the consumer gives the event loop the turns a Kafka client's background task
needs to put a request on the socket once woken: the sender waits in ``asyncio.wait`` for the
accumulator's future, then starts a task of its own for the request. Without those turns a batch's
records would wait out the next batch's decisions (which never await) before they are sent."""

from __future__ import annotations

import asyncio

from millrace_common.platform.consuming import _let_client_tasks_run


async def _sender(ready: asyncio.Future[None], sent: list[str]) -> None:
    """The shape of aiokafka's sender routine: wait for data, then a task per request."""
    await asyncio.wait({ready}, return_when=asyncio.FIRST_COMPLETED)

    async def request() -> None:
        sent.append("request written")

    await asyncio.create_task(request())


def test_a_woken_sender_has_written_its_request_when_the_next_batch_starts():
    async def main() -> list[str]:
        sent: list[str] = []
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        sender = asyncio.create_task(_sender(ready, sent))
        await asyncio.sleep(0)  # the sender is waiting for data
        ready.set_result(None)  # a batch handed its records over
        await _let_client_tasks_run()
        sent.append("next batch decided")
        await sender
        return sent

    assert asyncio.run(main()) == ["request written", "next batch decided"]
