"""Telling an outage from a poison message: an error that says PostgreSQL or Kafka cannot be reached
is waited out (retried, answered 503), any other error is the message's or the request's own, and is
isolated (dead-lettered after a few attempts, answered 4xx or 500). And saying an outage once per
interval rather than once per request or per retry."""

from __future__ import annotations

import time
from collections.abc import Callable


def unreachable_dependency(error: BaseException) -> str | None:
    """ "PostgreSQL" or "Kafka" when ``error`` (or an error it was raised from) says that dependency
    cannot be reached or did not answer in time; None for any other error."""
    import psycopg
    from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError, NodeNotReadyError
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, PoolTimeout | psycopg.OperationalError | psycopg.errors.AdminShutdown):
            return "PostgreSQL"
        if isinstance(current, DBAPIError) and (
            current.connection_invalidated or isinstance(current.orig, psycopg.OperationalError)
        ):
            return "PostgreSQL"
        if isinstance(current, KafkaConnectionError | KafkaTimeoutError | NodeNotReadyError):
            return "Kafka"
        if isinstance(current, KafkaError) and current.retriable:
            return "Kafka"
        if isinstance(current, ConnectionError):
            return "a dependency"
        current = current.__cause__ or current.__context__
    return None


class OncePerInterval:
    """Says a recurring thing once per interval per key, not once per request or retry."""

    def __init__(self, seconds: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._seconds = seconds
        self._clock = clock
        self._last: dict[str, float] = {}

    def due(self, key: str) -> bool:
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._seconds:
            return False
        self._last[key] = now
        return True
