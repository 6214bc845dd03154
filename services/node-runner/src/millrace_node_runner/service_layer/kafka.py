"""``kafka_publish``: a message to a topic the tenant was granted to produce to; the output says where
it was written (topic, partition, offset)."""

from __future__ import annotations

from aiokafka.errors import KafkaError, MessageSizeTooLargeError, TopicAuthorizationFailedError
from millrace_common.contracts.messages.node_commands import ExecuteNode
from millrace_common.contracts.node_errors import NodeErrorType

from millrace_node_runner.adapters.kafka_publisher import TopicPublisher
from millrace_node_runner.domain.http import compact_json, idempotency_key
from millrace_node_runner.domain.inputs import KafkaPublishInput
from millrace_node_runner.domain.outcomes import Outcome, Succeeded, failed

IDEMPOTENCY_HEADER = "millrace-idempotency-key"


class KafkaNodes:
    def __init__(self, publisher: TopicPublisher) -> None:
        self._publisher = publisher

    async def publish(self, command: ExecuteNode) -> Outcome:
        node = KafkaPublishInput.model_validate(command.input)
        if not await self._publisher.granted(command.tenant_id, node.topic):
            return failed(
                NodeErrorType.TOPIC_NOT_GRANTED,
                f"the tenant was not granted the topic {node.topic!r} to produce to",
                retryable=False,
            )
        headers = [(name, value.encode()) for name, value in node.headers.items()]
        key = idempotency_key(command.run_id, command.node_id, command.attempt)
        headers.append((IDEMPOTENCY_HEADER, key.encode()))
        try:
            written = await self._publisher.publish(
                node.topic,
                key=node.key.encode() if node.key is not None else None,
                value=compact_json(node.value),
                headers=headers,
            )
        except (MessageSizeTooLargeError, TopicAuthorizationFailedError) as error:
            return failed(NodeErrorType.KAFKA_PUBLISH, f"Kafka refused the message: {error}", retryable=False)
        except KafkaError as error:
            return failed(
                NodeErrorType.KAFKA_PUBLISH, f"Kafka did not take the message: {error}", retryable=True
            )
        return Succeeded({"topic": written.topic, "partition": written.partition, "offset": written.offset})
