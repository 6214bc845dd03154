"""Running a code node's Python in a sandbox built for untrusted code: ``pydantic-monty``, an
interpreter of its own (written in Rust) that runs in a pool of worker subprocesses.

Why monty (docs/architecture.md, "The code node's sandbox"): CPython cannot be made safe from the
inside (every restriction of builtins or attributes has been escaped through ``__subclasses__``,
frames or ``__globals__``); monty has no such attributes to reach, no module that touches the
network, the filesystem only through mounts (none are given here, so ``open`` is refused), its own
limits on execution time, heap and recursion checked inside the interpreter, and a parent-side
watchdog that kills a worker that stops answering. A worker runs outside the event loop (the async
pool talks to it off the loop), so a runaway holds one worker, never the service.

The code defines ``main()``; the context (``trigger``, ``nodes``, ``vars``, ``item``, ``index``,
``workflow``) and ``now`` (the moment the node was scheduled, ISO-8601) are its globals, and the
sandbox's clock is frozen at ``now``. What ``main()`` returns must be JSON; it is the node's
``result``. Used by the node runner (the ``code`` node) and the gateway (testing a node).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from millrace_common.contracts.json_values import JsonObject
from millrace_common.contracts.node_errors import NodeErrorType
from millrace_common.platform.settings import CodeSandboxSettings

if TYPE_CHECKING:
    from pydantic_monty import AsyncMonty, MontyError

__all__ = ["CodeFailure", "CodeLimits", "CodeResult", "CodeSandbox", "code_limits", "entry_call"]

ENTRY_FUNCTION = "main"
PRINTED_CAP = 4096
"""Characters of ``print`` output kept with a result (for testing a node); the rest is dropped."""
_FORBIDDEN_EXCEPTIONS = frozenset(
    {
        "ImportError",
        "ModuleNotFoundError",
        "PermissionError",
        "OSError",
        "FileNotFoundError",
        "IsADirectoryError",
        "NotADirectoryError",
        "FileExistsError",
    }
)
_NOT_SUPPORTED = "is not supported in this environment"


class CodeLimits(BaseModel):
    """What one execution may use; from the services' settings (``MILLRACE_CODE_*``)."""

    model_config = ConfigDict(frozen=True)

    cpu_seconds: float = Field(default=2.0, gt=0, le=300)
    memory_bytes: int = Field(default=64 * 1024 * 1024, ge=1024 * 1024)
    output_bytes: int = Field(default=256 * 1024, ge=16)
    recursion_depth: int = Field(default=200, ge=10, le=10_000)
    workers: int = Field(default=2, ge=1, le=256)


def code_limits(settings: CodeSandboxSettings) -> CodeLimits:
    """The limits the settings (``MILLRACE_CODE_*``) set."""
    return CodeLimits(
        cpu_seconds=settings.code_cpu_seconds,
        memory_bytes=settings.code_memory_bytes,
        output_bytes=settings.code_output_bytes,
        recursion_depth=settings.code_recursion_depth,
        workers=settings.code_concurrency,
    )


@dataclass(frozen=True)
class CodeResult:
    result: JsonValue
    printed: str


@dataclass(frozen=True)
class CodeFailure:
    error_type: NodeErrorType
    message: str
    line: int | None = None


CodeOutcome = CodeResult | CodeFailure


def entry_call(code: str) -> str:
    """The source a feed runs: the node's code, then the call of its entry function (on a line of its
    own, so a line number of the code is the line of the node's code)."""
    return f"{code}\n{ENTRY_FUNCTION}()\n"


class CodeSandbox:
    """A pool of monty workers, started by the first :meth:`run` (or :meth:`start`); :meth:`stop` at
    the end. Nothing of monty is loaded before: a process that never runs a code node (most gateways,
    a runner whose tenants have none) does not carry the interpreter (about 12 MB) or its worker."""

    def __init__(self, limits: CodeLimits) -> None:
        self._limits = limits
        self._pool: AsyncMonty | None = None
        self._starting = asyncio.Lock()

    @property
    def limits(self) -> CodeLimits:
        return self._limits

    async def start(self) -> AsyncMonty:
        async with self._starting:
            if self._pool is None:
                self._pool = await self._open()
            return self._pool

    async def _open(self) -> AsyncMonty:
        from pydantic_monty import AsyncMonty

        # request_timeout: the parent kills a worker whose turn runs 5 s past the execution budget
        # (the in-interpreter check only runs at checkpoints; a native call could outlast it).
        # Recycling a worker every 200 sessions bounds what a long-lived worker process accumulates.
        pool = AsyncMonty(
            min_processes=1,
            max_processes=self._limits.workers,
            request_timeout=self._limits.cpu_seconds + 5,
            max_checkouts_per_worker=200,
            feed_duration_limit_grace=1.0,
        )
        return await pool.__aenter__()

    async def stop(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.__aexit__(None, None, None)

    async def run(self, code: str, context: Mapping[str, JsonValue], *, now: datetime) -> CodeOutcome:
        """Run ``code``'s ``main()`` with ``context`` as its globals and the clock frozen at ``now``."""
        from pydantic_monty import MontyError

        pool = self._pool or await self.start()
        printed: list[str] = []

        def keep_printed(_stream: str, text: str) -> None:
            if sum(map(len, printed)) < PRINTED_CAP:
                printed.append(text)

        inputs = {**context, "now": now.isoformat()}
        try:
            async with pool.checkout(
                script_name="code.py",
                limits={
                    "max_feed_duration_secs": self._limits.cpu_seconds,
                    "max_memory": self._limits.memory_bytes,
                    "max_recursion_depth": self._limits.recursion_depth,
                    "max_suspensions": 100,
                    "max_total_sleep_secs": 0,
                },
                os_policy={"datetime": now, "sleep": "zero", "process_time": "zero"},
            ) as session:
                value = await session.feed_run(
                    entry_call(code), inputs=dict(inputs), print_callback=keep_printed
                )
        except MontyError as error:
            return _failure(error, self._limits)
        return _as_result(value, "".join(printed)[:PRINTED_CAP], self._limits)


def _failure(error: MontyError, limits: CodeLimits) -> CodeFailure:
    from pydantic_monty import MontyCrashedError, MontyRuntimeError, MontySyntaxError

    if isinstance(error, MontySyntaxError):
        frames = error.traceback()
        line = frames[-1].line if frames else None
        return CodeFailure(NodeErrorType.CODE_SYNTAX, error.display("type-msg")[:1000], line)
    if isinstance(error, MontyCrashedError):
        if error.timed_out:
            return CodeFailure(NodeErrorType.CODE_TIMEOUT, _timeout_message(limits))
        return CodeFailure(NodeErrorType.CODE_CRASHED, f"the sandbox's worker ended: {error}"[:1000])
    if isinstance(error, MontyRuntimeError):
        kind = type(error.exception()).__name__
        frames = error.traceback()
        line = frames[-1].line if frames else None
        where = f" (line {line})" if line is not None else ""
        message = error.display("type-msg")
        if kind == "TimeoutError" and "time limit exceeded" in message:
            return CodeFailure(NodeErrorType.CODE_TIMEOUT, _timeout_message(limits), line)
        if kind == "MemoryError":
            return CodeFailure(
                NodeErrorType.CODE_MEMORY_LIMIT,
                f"the code used more than its {limits.memory_bytes:,} bytes of memory{where}",
                line,
            )
        if kind == "RecursionError":
            return CodeFailure(
                NodeErrorType.CODE_RECURSION_LIMIT,
                f"the code's calls nested deeper than {limits.recursion_depth}{where}",
                line,
            )
        if kind in _FORBIDDEN_EXCEPTIONS or _NOT_SUPPORTED in message:
            return CodeFailure(
                NodeErrorType.CODE_FORBIDDEN,
                f"{message[:500]}{where}: a code node has no filesystem, network, environment or "
                "modules beyond the sandbox's own",
                line,
            )
        return CodeFailure(NodeErrorType.CODE_ERROR, f"{message[:1000]}{where}", line)
    return CodeFailure(NodeErrorType.CODE_CRASHED, f"the sandbox failed: {error}"[:1000])


def _timeout_message(limits: CodeLimits) -> str:
    return f"the code ran longer than its {limits.cpu_seconds:g} s"


def _as_result(value: object, printed: str, limits: CodeLimits) -> CodeOutcome:
    try:
        result = _json(value, depth=0)
    except _NotJson as problem:
        return CodeFailure(NodeErrorType.CODE_OUTPUT, f"main() returned {problem}; return JSON")
    size = len(json.dumps(result, separators=(",", ":"), ensure_ascii=False).encode())
    if size > limits.output_bytes:
        return CodeFailure(
            NodeErrorType.CODE_OUTPUT,
            f"main() returned {size:,} bytes of JSON; a code node's result may be at most "
            f"{limits.output_bytes:,} bytes",
        )
    return CodeResult(result, printed)


class _NotJson(Exception):
    pass


_MAX_DEPTH = 64


def _json(value: object, depth: int) -> JsonValue:
    if depth > _MAX_DEPTH:
        raise _NotJson(f"a value nested deeper than {_MAX_DEPTH}")
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if value.bit_length() > 1024:
            raise _NotJson("an integer too large for JSON numbers")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _NotJson(f"{value!r}, which JSON cannot hold")
        return value
    if isinstance(value, list | tuple):
        return [_json(v, depth + 1) for v in value]
    if isinstance(value, dict):
        out: JsonObject = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _NotJson(f"an object with a {type(key).__name__} key (JSON keys are text)")
            out[key] = _json(item, depth + 1)
        return out
    raise _NotJson(f"a {type(value).__name__}, which is not JSON")
