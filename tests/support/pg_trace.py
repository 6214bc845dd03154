"""libpq's own trace of the messages a psycopg connection sends and receives, read as round trips:
what the client sent before it read answers (``tests/integration/test_pg_pipeline.py``)."""

from __future__ import annotations

import os
import tempfile
from typing import IO, Any

import psycopg


class Trace:
    """Started on a connection (:meth:`start`), stopped (:meth:`stop`), then read."""

    def __init__(self, connection: psycopg.AsyncConnection[Any], file: IO[str]) -> None:
        self._connection = connection
        self._file = file
        self.messages: list[list[str]] = []
        """Each traced message's fields: ``F`` (sent by the client) or ``B`` (the server's), its
        length, its type (``Execute``, ``Sync``, ...) and its content."""

    @classmethod
    def start(cls, connection: psycopg.AsyncConnection[Any]) -> Trace:
        file = tempfile.TemporaryFile("w+")  # noqa: SIM115 - open from start() to stop()
        connection.pgconn.trace(file.fileno())
        connection.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        return cls(connection, file)

    def stop(self) -> Trace:
        self._connection.pgconn.untrace()
        with self._file as file:
            file.flush()
            os.fsync(file.fileno())
            file.seek(0)
            self.messages = [line.rstrip("\n").split("\t") for line in file if line[:2] in ("F\t", "B\t")]
        return self

    def round_trips(self) -> list[list[str]]:
        """For each run of messages the client sent before reading answers, the types it sent that
        run a statement or end the pipeline (``Execute``, ``Sync``)."""
        trips: list[list[str]] = []
        sending: list[str] | None = None
        for message in self.messages:
            if message[0] == "F":
                sending = [] if sending is None else sending
                if message[2] in ("Execute", "Sync"):
                    sending.append(message[2])
            elif sending is not None:
                trips.append(sending)
                sending = None
        return trips
