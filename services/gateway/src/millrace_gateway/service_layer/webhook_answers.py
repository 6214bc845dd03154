"""A webhook call that waits for its run's answer: the ``respond_to_webhook`` node's ``webhook.responded``
event, up to a bounded time, else the usual 202.

The answer reaches the gateway process that holds the call through the live feed every gateway process
already runs (``adapters.run_event_feed``: a consumer of ``runs.events`` without a group, so each
process sees every event; with two gateways the one holding the request hears it as well as the
other). The call follows its run before its ``StartRun`` is stored, so no event can pass unseen; and
when the wait runs out it looks in the run log once, for an answer the feed did not bring (the feed
still catching up after a restart, or an inbox that overflowed).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from uuid import UUID

from millrace_common.contracts.messages.run_events import WebhookResponded, event_type
from pydantic import JsonValue
from sqlalchemy.ext.asyncio import AsyncEngine

from millrace_gateway.adapters import runs
from millrace_gateway.adapters.run_event_feed import Follower, RunEventFeed

RESPONDED = event_type(WebhookResponded)


@dataclass(frozen=True)
class WebhookAnswer:
    """What the run answered the call with."""

    status: int
    headers: dict[str, str]
    body: JsonValue


def answer_of(payload: dict[str, object]) -> WebhookAnswer:
    """The answer a ``webhook.responded`` event carries."""
    headers = payload.get("headers")
    return WebhookAnswer(
        status=int(str(payload.get("status", 200))),
        headers={str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {},
        body=payload.get("body"),  # type: ignore[arg-type]
    )


class PendingAnswer:
    """One call's wait for its run's answer."""

    def __init__(self, answers: WebhookAnswers, follower: Follower, run_id: UUID, seconds: float) -> None:
        self._answers = answers
        self._follower = follower
        self._run_id = run_id
        self._seconds = seconds

    async def result(self) -> WebhookAnswer | None:
        """The run's answer, or None when it gave none within the wait (or ended without one)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._seconds
        while (left := deadline - loop.time()) > 0:
            event = await self._follower.next(left)
            if event is None:
                if self._follower.overflowed or self._follower.closing:
                    break
                continue
            if event.type == RESPONDED:
                return answer_of(json.loads(event.data))
            if event.ends_run:
                break
        return await self._answers.logged_answer(self._run_id)


class WebhookAnswers:
    def __init__(self, engine: AsyncEngine, feed: RunEventFeed, *, max_wait_seconds: float) -> None:
        self._engine = engine
        self._feed = feed
        self.max_wait_seconds = max_wait_seconds

    def wait_seconds(self, workflow_wait: float) -> float:
        """How long a call waits: the workflow's setting, capped by the installation's maximum."""
        return max(0.0, min(workflow_wait, self.max_wait_seconds))

    @asynccontextmanager
    async def awaiting(self, tenant_id: str, run_id: UUID, seconds: float) -> AsyncIterator[PendingAnswer]:
        """Follow ``run_id`` while the context is open (enter it before the run can start)."""
        async with self._feed.follow_run(tenant_id, run_id) as follower:
            yield PendingAnswer(self, follower, run_id, seconds)

    async def logged_answer(self, run_id: UUID) -> WebhookAnswer | None:
        """The answer in the run log, if the run gave one."""
        async with self._engine.connect() as connection:
            payload = await runs.first_of_type(connection, run_id, RESPONDED)
        return answer_of(payload) if payload is not None else None
