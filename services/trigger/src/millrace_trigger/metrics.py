"""The trigger service's own Prometheus metrics, on the registry its bootstrap creates."""

from __future__ import annotations

from typing import get_args

from prometheus_client import CollectorRegistry, Counter, Histogram

from millrace_trigger.domain.firings import Outcome, Source


class TriggerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.firings = Counter(
            "millrace_trigger_firings_total",
            f"Trigger decisions recorded, by source ({', '.join(get_args(Source))}), trigger kind and "
            f"outcome ({', '.join(Outcome)})",
            ["source", "kind", "outcome"],
            registry=registry,
        )
        self.duplicates = Counter(
            "millrace_trigger_duplicates_total",
            "Firings decided again for an idempotency key already recorded (a redelivered or repeated event)",
            ["source"],
            registry=registry,
        )
        self.schedule_lag = Histogram(
            "millrace_trigger_schedule_lag_seconds",
            "How long after its slot a scheduled run was asked for",
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
            registry=registry,
        )
