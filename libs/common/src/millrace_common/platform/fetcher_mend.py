"""A mend for aiokafka's fetcher, which can leave a consumer with no fetch in flight for a second.

The fetcher's background routine sends a broker no new fetch while one to it is in flight. It learns
that a fetch ended from a done-callback on the fetch's task, which takes the broker out of its
``_in_flight`` set. When the routine is woken in the same event-loop turn by something else (the
application consumed records, which wakes it too), its next pass runs before that callback: it sees
the fetch's task done and drops it, finds the broker still marked in flight, builds no fetch, and
waits with nothing in flight that could end the wait. Only the application consuming more records or
the routine's timeout (``consumer_timeout_ms``, 1 s here: ``fetch_wait.FETCHER_TIMEOUT_MS``) ends
it, and a consumer that has handled everything it had consumes nothing more. Records reaching the
broker meanwhile wait with it: the orchestrator took a run 0.5-1 s after a burst of record events, and
the backlog built meanwhile took seconds to clear at half the burst rate (docs/benchmarks.md).

:func:`mend` has the fetch itself (and the position reset, the other task the routine marks) take its
broker out of the set before its task completes, so a pass never sees a finished fetch still marked.
aiokafka 0.14.0, the newest release, has the race; ``tests/unit/test_fetcher_mend.py`` fails if a
release renames what the mend relies on, and shows the mend's effect on the routine's own code.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer

log = logging.getLogger(__name__)

IN_FLIGHT_ATTRIBUTE = "_in_flight"
MARKED_TASKS = ("_proc_fetch_request", "_update_fetch_positions")
"""The fetcher's coroutines the routine runs as tasks marking their broker in flight; each takes the
assignment and the broker's node id first."""
_MENDED = "_millrace_in_flight_mended"


def mend(consumer: AIOKafkaConsumer) -> bool:
    """Mend a started consumer's fetcher (once); False, and a warning, when it has none or aiokafka
    no longer has what the mend relies on."""
    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is None or not all(hasattr(fetcher, name) for name in (IN_FLIGHT_ATTRIBUTE, *MARKED_TASKS)):
        log.warning("aiokafka's fetcher not mended: it is missing or has changed")
        return False
    if getattr(fetcher, _MENDED, False):
        return True
    for name in MARKED_TASKS:
        setattr(fetcher, name, _unmarking(fetcher, getattr(fetcher, name)))
    setattr(fetcher, _MENDED, True)
    return True


def _unmarking(fetcher: Any, task: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def unmarked(assignment: Any, node_id: Any, *rest: Any) -> Any:
        try:
            return await task(assignment, node_id, *rest)
        finally:
            getattr(fetcher, IN_FLIGHT_ATTRIBUTE).discard(node_id)

    return unmarked
