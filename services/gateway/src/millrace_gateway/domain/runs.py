"""Run naming for API-started runs. Pure."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

_MANUAL_RUNS = uuid5(NAMESPACE_URL, "millrace:manual-run")


def manual_run_id(workflow_id: UUID, idempotency_key: str) -> UUID:
    """The same key for the same workflow names the same run, so a retried request starts one run."""
    return uuid5(_MANUAL_RUNS, f"{workflow_id}:{idempotency_key}")
