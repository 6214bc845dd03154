"""Which finished runs may go: a run is pruned only once it has ended, longer ago than its tenant keeps
runs, and longer ago than any message about it can still be delivered (the processed-message horizon,
which is itself longer than the topics keep messages). A run still running, or retried back to
running, is never selected, whatever its age."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from millrace_common.contracts.messages.run_events import RUN_ENDED_STATUSES


@dataclass(frozen=True)
class TenantRetention:
    """A tenant's choice: how long its finished runs are kept (None: the installation's default), and
    whether what is pruned is exported first."""

    keep: timedelta | None = None
    export_first: bool = False


@dataclass(frozen=True)
class RetentionRules:
    default_keep: timedelta
    shortest_keep: timedelta
    tenants: Mapping[str, TenantRetention] = field(default_factory=dict)

    def keep(self, tenant_id: str) -> timedelta:
        chosen = self.tenants.get(tenant_id, TenantRetention()).keep
        return max(chosen if chosen is not None else self.default_keep, self.shortest_keep)

    def export_first(self, tenant_id: str) -> bool:
        return self.tenants.get(tenant_id, TenantRetention()).export_first

    def sweeps(self, now: datetime) -> list[Sweep]:
        """One sweep per tenant with a setting of its own, then one for every other tenant."""
        own = [
            Sweep(now - self.keep(tenant_id), self.export_first(tenant_id), tenant_id=tenant_id)
            for tenant_id in sorted(self.tenants)
        ]
        others = Sweep(
            now - max(self.default_keep, self.shortest_keep), False, excluded=frozenset(self.tenants)
        )
        return [*own, others]


@dataclass(frozen=True)
class Sweep:
    """Finished runs that ended before ``before``: of one tenant, or of every tenant not ``excluded``."""

    before: datetime
    export_first: bool
    tenant_id: str | None = None
    excluded: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RunCandidate:
    run_id: UUID
    tenant_id: str
    status: str
    finished_at: datetime | None
    last_seq: int


def prunable(run: RunCandidate, rules: RetentionRules, now: datetime) -> bool:
    return (
        run.status in RUN_ENDED_STATUSES
        and run.finished_at is not None
        and run.finished_at < now - rules.keep(run.tenant_id)
    )


def select_prunable(
    candidates: Iterable[RunCandidate], rules: RetentionRules, now: datetime
) -> list[RunCandidate]:
    """The candidates that may go (a query's answer is checked again here: the rule lives once)."""
    return [run for run in candidates if prunable(run, rules, now)]
