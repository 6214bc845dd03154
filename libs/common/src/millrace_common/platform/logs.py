"""JSON-lines logging that carries the service name and, where bound, tenant, run and node ids."""

from __future__ import annotations

import contextvars
import json
import logging
import logging.handlers
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from types import MappingProxyType

_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "millrace_log_context", default=MappingProxyType({})
)


@contextmanager
def bound(**ids: object) -> Iterator[None]:
    """Attach ids (``run_id``, ``tenant_id``, ``node_id``...) to every log line written inside."""
    token = _context.set({**_context.get(), **{k: str(v) for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


class JsonLines(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "message": record.getMessage(),
            **_context.get(),
        }
        extra_ids = getattr(record, "ids", None)
        if isinstance(extra_ids, dict):
            line.update({k: str(v) for k, v in extra_ids.items()})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class OncePerInterval(logging.Filter):
    """Lets a library's warning through once per interval per logger and message template (the text
    before its arguments), with how many were held back since: a broker outage makes the Kafka client
    repeat the same connection warnings many times a second in every service."""

    def __init__(self, seconds: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._seconds = seconds
        self._clock = clock
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = self._clock()
        last = self._seen.get(key)
        if last is not None and now - last[0] < self._seconds:
            self._seen[key] = (last[0], last[1] + 1)
            return False
        held_back = last[1] if last is not None else 0
        self._seen[key] = (now, 0)
        if held_back:
            record.ids = {**getattr(record, "ids", {}), "repeated": held_back}  # type: ignore[attr-defined]
        return True


RATE_LIMITED_LOGGERS = ("aiokafka", "kafka")
QUIETED_LOGGERS = ("aiokafka", "uvicorn.access", "httpx", "httpx2")
"""Loggers kept to warnings and above whatever the service's level."""


def rate_limited(logger_name: str) -> bool:
    """The Kafka client's loggers."""
    return logger_name.split(".")[0] in RATE_LIMITED_LOGGERS


class RotatingLogFile(logging.handlers.RotatingFileHandler):
    """The standard library's size-rotated log file, deciding from the size the file has reached
    rather than from the record about to be written: the library's own check formats every record a
    second time and looks the file up twice, which doubled the cost of a service's per-run lines.
    A file may so pass its limit by one line. Like the library's, it never rotates what is not a
    regular file (``/dev/stderr``, a pipe), which has no size to read."""

    _regular = True

    def _open(self):  # type: ignore[no-untyped-def]
        stream = super()._open()
        self._regular = os.path.isfile(self.baseFilename)
        return stream

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        if self.stream is None:
            self.stream = self._open()
        return self._regular and self.maxBytes > 0 and self.stream.tell() >= self.maxBytes


def configure_logging(
    service: str, level: str = "INFO", *, file: str = "", max_bytes: int = 64 << 20, backups: int = 3
) -> None:
    """Send every logger's records to stderr (or to ``file``, rotated at ``max_bytes`` with
    ``backups`` older files kept) as JSON lines; the Kafka client's repeated warnings at most once
    per 30 s each. The HTTP clients' own lines are kept to warnings: httpx and httpx2 log
    every request with its full URL at info, and a URL's query may carry a tenant's secret (it also
    cost the node runner a log line per HTTP node)."""
    handler: logging.Handler = (
        RotatingLogFile(file, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        if file
        else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(JsonLines(service))
    limiter = OncePerInterval()
    handler.addFilter(lambda record: limiter.filter(record) if rate_limited(record.name) else True)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in QUIETED_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
