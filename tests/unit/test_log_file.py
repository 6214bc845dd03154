"""A service told to write its log to a file (as `make up` does) keeps that file bounded: rotated by
size, a fixed number of older files kept, each record formatted once."""

from __future__ import annotations

import json
import logging
import os

import pytest
from millrace_common.platform.logs import JsonLines, RotatingLogFile, configure_logging

pytestmark = pytest.mark.unit


class _CountingJsonLines(JsonLines):
    def __init__(self) -> None:
        super().__init__("test")
        self.formatted = 0

    def format(self, record: logging.LogRecord) -> str:
        self.formatted += 1
        return super().format(record)


def _logger(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"test_log_file.{id(handler)}")
    logger.propagate = False
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    return logger


def test_the_file_is_rotated_by_size_and_only_so_many_older_files_are_kept(tmp_path):
    path = tmp_path / "orchestrator.log"
    handler = RotatingLogFile(str(path), maxBytes=4_000, backupCount=2, encoding="utf-8")
    formatter = _CountingJsonLines()
    handler.setFormatter(formatter)
    logger = _logger(handler)
    for number in range(200):
        logger.info("run finished", extra={"ids": {"run": number}})
    handler.close()

    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["orchestrator.log", "orchestrator.log.1", "orchestrator.log.2"]
    line_bytes = len(path.read_text().splitlines()[0]) + 1
    for name in files:
        # At most one line past the limit: the check reads the size the file has reached.
        assert (tmp_path / name).stat().st_size < 4_000 + line_bytes
    newest = [json.loads(line) for line in path.read_text().splitlines()]
    assert newest[-1]["run"] == "199" and newest[-1]["message"] == "run finished"
    older = [json.loads(line)["run"] for line in (tmp_path / "orchestrator.log.1").read_text().splitlines()]
    assert int(older[-1]) + 1 == int(newest[0]["run"])
    assert formatter.formatted == 200


def test_configure_logging_writes_to_the_file_when_given_one(tmp_path):
    path = tmp_path / "trigger.log"
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("trigger", "INFO", file=str(path), max_bytes=1 << 20, backups=1)
        logging.getLogger("millrace_trigger.test").info("trigger asked for a run")
        for handler in root.handlers:
            handler.flush()
        (line,) = path.read_text().splitlines()
        assert json.loads(line)["service"] == "trigger"
        assert isinstance(root.handlers[0], RotatingLogFile)
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:], level = saved
        root.setLevel(level)


def test_a_log_file_that_is_not_a_regular_file_is_written_and_never_rotated(tmp_path):
    read, write = os.pipe()
    os.set_blocking(read, False)  # nothing written must fail the test, not hang it
    handler = RotatingLogFile(f"/proc/self/fd/{write}", maxBytes=10, backupCount=1, encoding="utf-8")
    handler.setFormatter(JsonLines("test"))
    logger = _logger(handler)
    errors = []
    handler.handleError = errors.append  # type: ignore[method-assign]
    try:
        for number in range(3):
            logger.info("run finished", extra={"ids": {"run": number}})
        handler.flush()
        try:
            lines = os.read(read, 65536).decode().splitlines()
        except BlockingIOError:
            lines = []
    finally:
        handler.close()
        os.close(read)
        os.close(write)
    assert errors == []
    assert [json.loads(line)["run"] for line in lines] == ["0", "1", "2"]
