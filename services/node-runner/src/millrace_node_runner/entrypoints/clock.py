"""The node runner's loop driven by the clock: the retention pass over the tables it writes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from millrace_common.platform.pruning import PruneLoop
from sqlalchemy.ext.asyncio import AsyncEngine

from millrace_node_runner.adapters.retention import statements
from millrace_node_runner.settings import NodeRunnerSettings


def retention_loop(
    engine: AsyncEngine, settings: NodeRunnerSettings, clock: Callable[[], datetime]
) -> PruneLoop:
    """Prunes results, AI answers, the token ledger and done tasks every
    ``MILLRACE_RETENTION_INTERVAL_SECONDS``."""
    pruned = statements(
        results_keep=timedelta(days=settings.runner_retention_days),
        usage_keep=timedelta(days=settings.ai_usage_retention_days),
        tasks_keep=timedelta(days=settings.task_retention_days),
    )
    return PruneLoop(engine, pruned, clock, interval_seconds=settings.retention_interval_seconds)
