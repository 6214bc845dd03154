"""Notifications that arrive, at least once: every pass plans the tasks and approval notifications not
planned yet (a row per channel and recipient, in the transaction that reads the addresses), then claims
the due rows and delivers them concurrently, recording each attempt. All state is in PostgreSQL, so a
restart loses nothing: a row claimed by a process that died is claimed again once its lease ran out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from millrace_node_runner.adapters import notification_store as store
from millrace_node_runner.adapters.notification_channels import Channels, DeliveryFailed
from millrace_node_runner.domain.notifications import Retry, after_attempt, plan

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


class Notifications:
    def __init__(
        self,
        engine: AsyncEngine,
        channels: Channels,
        clock: Clock,
        *,
        retry: Retry,
        links: store.LinkBases,
        lookback: timedelta,
        lease: timedelta = timedelta(minutes=2),
        batch: int = 50,
        concurrency: int = 8,
    ) -> None:
        self._engine = engine
        self._channels = channels
        self._clock = clock
        self._retry = retry
        self._links = links
        self._lookback = lookback
        self._lease = lease
        self._batch = batch
        # Each attempt borrows a pooled connection or two (the channel settings, its outcome): a few at
        # a time, so a burst of notifications does not keep the pool from the nodes the runner runs.
        # As many are claimed as are sent at once, so none waits out its lease before it is sent.
        self._concurrency = concurrency

    async def plan_new(self) -> int:
        """Plans at most one batch of new sources; returns how many."""
        now = self._clock()
        async with self._engine.begin() as connection:
            found = await store.new_sources(
                connection, since=now - self._lookback, batch=self._batch, links=self._links
            )
            for new in found:
                # Read for chat too: an assignee named by user id is shown by address.
                addresses = await store.addresses(connection, new.source)
                await store.insert_planned(
                    connection, new.source, plan(new.source, new.channels, addresses), now
                )
        return len(found)

    async def deliver_due(self) -> int:
        """Claims at most ``concurrency`` due notifications and attempts them at once; returns how many."""
        now = self._clock()
        async with self._engine.begin() as connection:
            claimed = await store.claim(
                connection, now=now, lease_until=now + self._lease, batch=self._concurrency
            )
        await asyncio.gather(*(self._attempt(one) for one in claimed))
        return len(claimed)

    async def _attempt(self, claimed: store.Claimed) -> None:
        error: str | None = None
        try:
            await asyncio.wait_for(self._channels.deliver(claimed), timeout=self._lease.total_seconds() / 2)
        except DeliveryFailed as failed:
            error = str(failed)
        except TimeoutError:
            error = f"no answer within {self._lease.total_seconds() / 2:g} s"
        except Exception as unexpected:  # one bad notification must not stop the others
            log.exception("notification %s: unexpected error", claimed.id)
            error = f"unexpected error ({type(unexpected).__name__})"
        now = self._clock()
        settled = after_attempt(claimed.attempt, error, self._retry, now)
        async with self._engine.begin() as connection:
            await store.settle(connection, claimed, settled, error, now)

    async def run_once(self) -> None:
        while await self.plan_new() >= self._batch:
            pass
        while await self.deliver_due() >= self._concurrency:
            pass
