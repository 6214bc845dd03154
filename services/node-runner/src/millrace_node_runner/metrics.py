"""The node runner's own Prometheus metrics, on the registry its bootstrap creates (node durations are
counted by its Kafka consumer, tokens and HTTP answers by the node use cases)."""

from __future__ import annotations

from millrace_common.platform.metrics import BoundedLabel
from prometheus_client import CollectorRegistry, Counter, Histogram


class AiMetrics:
    """Tokens spent, by tenant and model. Models are the tenants' choice: past 50 distinct ones per
    process they are counted as ``other``, and tenants past 1000."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._tenant = BoundedLabel(1000)
        self._model = BoundedLabel(50)
        self.tokens = Counter(
            "millrace_ai_tokens_total",
            "Tokens used by AI nodes, by tenant, model and kind (prompt, completion)",
            ["tenant", "model", "kind"],
            registry=registry,
        )
        self.calls = Counter(
            "millrace_ai_calls_total",
            "AI endpoint calls that answered, by tenant and model (stored answers reused are not calls)",
            ["tenant", "model"],
            registry=registry,
        )

    def used(self, tenant_id: str, model: str, prompt_tokens: int, completion_tokens: int) -> None:
        tenant, model_label = self._tenant(tenant_id), self._model(model)
        self.calls.labels(tenant=tenant, model=model_label).inc()
        self.tokens.labels(tenant=tenant, model=model_label, kind="prompt").inc(prompt_tokens)
        self.tokens.labels(tenant=tenant, model=model_label, kind="completion").inc(completion_tokens)


class HttpMetrics:
    """Answers to HTTP and outgoing-webhook nodes, by status class; each redirect hop counts."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.responses = Counter(
            "millrace_http_node_responses_total",
            "Responses to HTTP node requests by status class (1xx..5xx), or no_response (timeout, "
            "connection failure) and refused (target not allowed by the tenant's network policy)",
            ["status_class"],
            registry=registry,
        )

    def answered(self, status: int) -> None:
        self.responses.labels(status_class=f"{status // 100}xx" if 100 <= status < 600 else "other").inc()

    def no_response(self) -> None:
        self.responses.labels(status_class="no_response").inc()

    def refused(self) -> None:
        self.responses.labels(status_class="refused").inc()


class NodeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.node_seconds = Histogram(
            "millrace_node_seconds",
            "Time to run one node command, by node type and outcome",
            ["node_type", "outcome"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )
