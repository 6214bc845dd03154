"""Prometheus metrics shared by every service, on a registry the service's bootstrap creates."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class ConsumerMetrics:
    """Messages handled and dead-lettered per topic and consumer group."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.handled = Counter(
            "millrace_messages_handled_total",
            "Kafka messages handled, by topic, consumer group and outcome",
            ["topic", "group", "outcome"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "millrace_dead_letters_total",
            "Messages sent to a dead-letter topic, by source topic",
            ["topic"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "millrace_consumer_batch_seconds",
            "Time to handle one polled batch, by topic",
            ["topic"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=registry,
        )
