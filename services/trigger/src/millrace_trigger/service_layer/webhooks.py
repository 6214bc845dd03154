"""Use case: a polled batch of ``webhooks.inbound`` (decoded) asks each call's workflow for a run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from millrace_common.contracts.messages.webhooks import AnyWebhookMessage
from millrace_common.platform.consuming import Delivery

from millrace_trigger.domain.firings import Candidate
from millrace_trigger.domain.matching import match_webhook
from millrace_trigger.service_layer.firings import ConsumerShell


class WebhookHandler:
    """``webhooks.inbound``: each accepted call asks its workflow for a run (or records why not)."""

    def __init__(self, shell: ConsumerShell) -> None:
        self._shell = shell

    async def handle(self, deliveries: Sequence[Delivery[Any]]) -> None:
        shell = self._shell
        async with shell.engine.begin() as connection:
            now = shell.clock.now()
            fresh = await shell.unhandled(connection, deliveries)
            calls: list[AnyWebhookMessage] = [d.message for d in fresh]
            candidates = await shell.store.workflow_candidates(connection, (m.workflow_id for m in calls))
            firings = [
                match_webhook(m, _same_tenant(candidates.get(m.workflow_id), m.tenant_id), now=now)
                for m in calls
            ]
            settled = await shell.ledger.settle(connection, firings, now)
        await shell.publish(settled, "webhook")


def _same_tenant(candidate: Candidate | None, tenant_id: str) -> Candidate | None:
    return candidate if candidate is not None and candidate.tenant_id == tenant_id else None
