"""The gateway's loop driven by the clock: replays that lost their sender are sent again."""

from __future__ import annotations

import asyncio
import logging

from millrace_common.platform.outages import OncePerInterval, unreachable_dependency

from millrace_gateway.service_layer.dead_letters import DeadLetterDesk

log = logging.getLogger(__name__)


class ReplayLoop:
    def __init__(self, desk: DeadLetterDesk, *, interval_seconds: float = 5.0) -> None:
        self._desk = desk
        self._interval = interval_seconds
        self._outages = OncePerInterval()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self._desk.resend()
            except Exception as error:
                missing = unreachable_dependency(error)
                if missing is None:
                    raise
                if self._outages.due(missing):
                    log.warning(
                        "replays wait for a dependency (said once per 30 s)",
                        extra={"ids": {"dependency": missing}},
                    )
