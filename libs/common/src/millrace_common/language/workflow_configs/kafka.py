"""The Kafka publish node's config: a message to a topic the tenant was granted to produce to."""

from __future__ import annotations

from pydantic import Field, JsonValue

from millrace_common.language.workflow_configs.base import KafkaTopicName, NodeConfig


class KafkaPublishConfig(NodeConfig):
    """``value`` is sent as JSON; ``key`` and ``headers`` as text (each a template). The topic is
    literal: it must be one the tenant was granted to produce to, checked on saving and when the
    node runs."""

    literal_fields = frozenset({"topic"})

    topic: KafkaTopicName
    key: str | None = Field(default=None, max_length=4096)
    headers: dict[str, str] = Field(default_factory=dict, max_length=50)
    value: JsonValue = None
