"""The Kafka client's repeated warnings reach the log once per interval, with how many were held back;
the HTTP clients' request lines do not reach it."""

from __future__ import annotations

import logging

import pytest
from millrace_common.platform.logs import QUIETED_LOGGERS, OncePerInterval, configure_logging, rate_limited

pytestmark = pytest.mark.unit


def record(name: str, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, args, None)


def test_the_same_warning_passes_once_per_interval_and_then_says_how_many_were_held_back():
    now = [0.0]
    limiter = OncePerInterval(30.0, clock=lambda: now[0])
    passed = []
    for second in range(95):
        now[0] = float(second)
        for _ in range(100):  # a hundred a second, as during a broker outage
            line = record("aiokafka.conn", "Unable to connect to %s", f"node-{second}")
            if limiter.filter(line):
                passed.append((second, getattr(line, "ids", {})))
    assert [second for second, _ in passed] == [0, 30, 60, 90]
    assert passed[0][1] == {} and passed[1][1] == {"repeated": 2999}


def test_different_templates_and_loggers_are_counted_apart():
    limiter = OncePerInterval(30.0, clock=lambda: 0.0)
    assert limiter.filter(record("aiokafka.conn", "Unable to connect to %s", "a"))
    assert limiter.filter(record("aiokafka.consumer", "Unable to connect to %s", "a"))
    assert limiter.filter(record("aiokafka.conn", "Connection reset"))
    assert not limiter.filter(record("aiokafka.conn", "Unable to connect to %s", "b"))


def test_only_the_kafka_clients_loggers_are_limited():
    assert rate_limited("aiokafka.conn") and rate_limited("aiokafka.producer.sender")
    # Our own modules' lines (a dead letter, an outage said once already) are never held back.
    assert not rate_limited("millrace_common.platform.kafka") and not rate_limited(
        "millrace_node_runner.entrypoints.kafka"
    )
    assert not rate_limited("millrace_orchestrator.handlers") and not rate_limited("uvicorn.error")


def test_the_http_clients_request_lines_are_not_logged():
    # httpx and httpx2 log each request's full URL at info; a query may carry a tenant's secret.
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, {n: logging.getLogger(n).level for n in QUIETED_LOGGERS})
    try:
        configure_logging("example", "DEBUG")
        for name in ("httpx", "httpx2"):
            assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
            assert logging.getLogger(name).isEnabledFor(logging.WARNING), name
        assert logging.getLogger("millrace_node_runner.adapters.http").isEnabledFor(logging.DEBUG)
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)
