"""A mend for aiokafka's fetcher, which can leave a consumer with no fetch in flight for a second.

The fetcher's background routine sends a broker no new fetch while one to it is in flight. It learns
that a fetch ended from a done-callback on the fetch's task, which takes the broker out of its
``_in_flight`` set. When the routine is woken in the same event-loop turn by something else (the
application took records, which wakes it too), its next pass runs before that callback: it sees the
fetch's task done and drops it, finds the broker still marked in flight, builds no fetch, and waits
with nothing in flight that could end the wait. Only the application taking more records or the
routine's timeout (``consumer_timeout_ms``, 1 s here: ``fetch_wait.FETCHER_TIMEOUT_MS``) ends it,
and a consumer that has handled everything it had takes nothing more. Records reaching the broker
meanwhile wait with it: after a burst of record events the orchestrator took the next run 0.5-0.8 s
late, and the backlog built meanwhile took seconds to clear at half the burst rate
(docs/benchmarks.md).

:func:`mend` leaves the mark to aiokafka and wakes the routine once more after it is cleared: each
fetch (and each position reset, the other task the routine marks) adds a done-callback of its own to
its task when it starts, after aiokafka's, which resolves what the routine waits on. A pass that ran
too early is followed by one that sees the broker free. The mark itself stays aiokafka's, so a broker
never has two fetches out. A consumer's first fetch can start before :func:`mend` (``start()`` creates
the fetcher and waits for the assignment), so the race can still cost one timeout at a start.
aiokafka 0.14.0, the newest release, has the race; ``tests/unit/test_fetcher_mend.py`` runs aiokafka's
routine into it with and without the mend and fails if a release renames what the mend relies on.

The same routine resets a partition's position (a partition newly assigned with no committed offset)
by asking the partition's leader as its metadata has it. When that broker is no longer the leader
(it was killed and came back, say), the answer is an error that says the metadata is stale, and
aiokafka logs it, waits and asks the same broker again without refreshing the metadata: it did so for
two minutes in the cluster drill, and while a reset is pending no fetch goes to that broker for any
partition, so the runs waiting there stalled until the metadata's age ran out. The mend asks for a
metadata refresh on such an error, as aiokafka does itself when it looks offsets up for the
application.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)

IN_FLIGHT_ATTRIBUTE = "_in_flight"
"""The fetcher's set of brokers with a task in flight (read by the tests)."""
WAKE_ATTRIBUTE = "_wait_consume_future"
"""The future a pass of the routine waits on besides its tasks, made anew for each pass; resolved when
the application takes records."""
MARKED_TASKS = ("_proc_fetch_request", "_update_fetch_positions")
"""The fetcher's coroutines the routine runs as tasks marking their broker in flight."""
OFFSET_REQUEST = "_proc_offset_request"
"""The fetcher's request for a reset's offsets, which refreshes no metadata when it fails."""
_MENDED = "_millrace_wakes_after_unmark"


def mend(consumer: AIOKafkaConsumer) -> bool:
    """Mend a started consumer's fetcher (once); False, and a warning, when it has none or aiokafka
    no longer has what the mend relies on."""
    fetcher = getattr(consumer, "_fetcher", None)
    needed = (WAKE_ATTRIBUTE, *MARKED_TASKS, OFFSET_REQUEST, "_client")
    if fetcher is None or not all(hasattr(fetcher, name) for name in needed):
        log.warning("aiokafka's fetcher not mended: it is missing or has changed")
        return False
    if getattr(fetcher, _MENDED, False):
        return True
    for name in MARKED_TASKS:
        setattr(fetcher, name, _waking(fetcher, getattr(fetcher, name)))
    setattr(fetcher, OFFSET_REQUEST, _refreshing(fetcher, getattr(fetcher, OFFSET_REQUEST)))
    setattr(fetcher, _MENDED, True)
    return True


def _waking(fetcher: Any, task: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def woken(*args: Any) -> Any:
        # The routine registered its own callback when it created this task, before this first step.
        current = asyncio.current_task()
        if current is not None:
            current.add_done_callback(lambda _done: _wake(fetcher))
        return await task(*args)

    return woken


def _refreshing(fetcher: Any, request: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def refreshed(*args: Any) -> Any:
        try:
            return await request(*args)
        except KafkaError as error:
            if getattr(error, "invalid_metadata", False):
                fetcher._client.force_metadata_update()
            raise

    return refreshed


def _wake(fetcher: Any) -> None:
    future = getattr(fetcher, WAKE_ATTRIBUTE, None)
    if future is not None and not future.done():
        future.set_result(None)
