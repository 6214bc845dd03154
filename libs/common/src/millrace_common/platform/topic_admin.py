"""Creating the registry's topics on a broker, and growing them (``millrace-topics``). The layout
(partitions, replicas, configs) comes from the settings: ``millrace_common.platform.topic_layout``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code

from millrace_common.contracts.topics import Namespace, Topic, every_topic
from millrace_common.platform.kafka_security import client_options
from millrace_common.platform.settings import KafkaClientSettings, ServiceSettings
from millrace_common.platform.topic_layout import (
    ORDER_WARNING,
    DeadLetterTopics,
    GrowthPlan,
    TopicLayout,
    TopicShape,
    parse_partition_overrides,
    plan_growth,
)

__all__ = ["DeadLetterTopics", "TopicLayout", "ensure_topics", "grow_topics", "layout_of", "main"]

DYNAMIC_TOPIC_CONFIG = 1
"""``config_source`` of a config set on the topic itself (not a broker default)."""


def layout_of(settings: ServiceSettings) -> TopicLayout:
    """The layout the settings ask for."""
    return TopicLayout(
        replication_factor=settings.kafka_replication_factor,
        min_insync_replicas=settings.kafka_min_insync_replicas,
        partitions=settings.kafka_partitions,
        overrides=parse_partition_overrides(settings.kafka_topic_partitions),
        retention_ms=settings.kafka_retention_ms,
        max_message_bytes=settings.kafka_max_message_bytes,
        dead_letters=DeadLetterTopics(settings.dead_letter_partitions, settings.dead_letter_retention_ms),
    )


class TopicsRefused(RuntimeError):
    """The broker refused to create topics (a replication factor above its broker count, say)."""


@dataclass(frozen=True)
class TopicsReport:
    created: list[str] = field(default_factory=list)
    behind: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Existing topics with fewer partitions than the layout asks for: (have, wanted)."""


async def ensure_topics(
    settings: ServiceSettings, namespace: Namespace, layout: TopicLayout | None = None
) -> TopicsReport:
    """Create every registered topic (and its dead-letter topic) that does not exist yet, as
    ``layout`` says (by default the settings', :func:`layout_of`). Existing topics get the layout's
    configs (others set on them are kept) and dead-letter topics grow to their partition count; other
    topics never grow here, since that moves their keys to other partitions (:func:`grow_topics`):
    the report names those behind the layout."""
    layout = layout or layout_of(settings)
    admin = _admin(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        shapes = {namespace.topic(t): (t, layout.shape_of(t)) for t in every_topic()}
        report = TopicsReport()
        missing = [
            NewTopic(name, shape.partitions, layout.replication_factor, topic_configs=shape.configs)
            for name, (_, shape) in shapes.items()
            if name not in existing
        ]
        if missing:
            answer = await admin.create_topics(missing)
            # The client returns the broker's answer per topic; it raises for none of them.
            failed = []
            for name, code, *message in answer.topic_errors:
                if code == TopicAlreadyExistsError.errno:
                    existing.add(name)  # made meanwhile by another millrace-topics
                elif code:
                    failed.append(
                        f"{name}: {for_code(code).__name__} {message[0] if message else ''}".strip()
                    )
                else:
                    report.created.append(name)
            if failed:
                raise TopicsRefused(
                    f"the broker refused to create {len(failed)} topics (replication factor "
                    f"{layout.replication_factor}, min.insync.replicas {layout.min_insync_replicas}): "
                    + "; ".join(failed)
                )
        kept = {name: shapes[name] for name in shapes if name in existing}
        if kept:
            counts = await _partition_counts(admin, list(kept))
            for name, (topic, shape) in kept.items():
                if counts[name] < shape.partitions and not topic.holds_dead_letters:
                    report.behind[name] = (counts[name], shape.partitions)
            await _grow(
                admin,
                {
                    name: shape.partitions
                    for name, (topic, shape) in kept.items()
                    if topic.holds_dead_letters and counts[name] < shape.partitions
                },
            )
            await _set_configs(admin, {name: shape for name, (_, shape) in kept.items()})
        return report
    finally:
        await admin.close()


async def grow_topics(
    kafka: KafkaClientSettings, wanted: Mapping[str, int], *, explicit: bool, apply: bool
) -> GrowthPlan:
    """Grow the named broker topics to ``wanted`` partitions (never shrink: see :func:`plan_growth`);
    with ``apply`` false, only plan."""
    admin = _admin(kafka)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        counts = await _partition_counts(admin, [name for name in wanted if name in existing])
        plan = plan_growth(counts, wanted, explicit=explicit)
        if apply and not plan.refused:
            await _grow(admin, {growth.topic: growth.to for growth in plan.grow})
        return plan
    finally:
        await admin.close()


def _admin(kafka: KafkaClientSettings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=kafka.kafka_bootstrap, request_timeout_ms=30_000, **client_options(kafka)
    )


async def _partition_counts(admin: AIOKafkaAdminClient, names: Sequence[str]) -> dict[str, int]:
    if not names:
        return {}
    return {topic["topic"]: len(topic["partitions"]) for topic in await admin.describe_topics(list(names))}


async def _grow(admin: AIOKafkaAdminClient, counts: Mapping[str, int]) -> None:
    if counts:
        await admin.create_partitions({name: NewPartitions(count) for name, count in counts.items()})


async def _set_configs(admin: AIOKafkaAdminClient, shapes: Mapping[str, TopicShape]) -> None:
    """The layout's configs over those set on each topic: the broker's AlterConfigs replaces a topic's
    whole set, so the ones set before (by an operator, say) are read first and sent again."""
    described = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name) for name in shapes]
    )
    own: dict[str, dict[str, str]] = {name: {} for name in shapes}
    for answer in described:
        for resource in answer.to_object()["resources"]:
            own[resource["resource_name"]] = {
                entry["config_names"]: entry["config_value"]
                for entry in resource["config_entries"]
                if entry.get("config_source") == DYNAMIC_TOPIC_CONFIG and entry["config_value"] is not None
            }
    answers = await admin.alter_configs(
        [
            ConfigResource(ConfigResourceType.TOPIC, name, configs={**own[name], **shape.configs})
            for name, shape in shapes.items()
        ]
    )
    for answer in answers:
        for code, message, _, name in answer.resources:
            if code:
                raise for_code(code)(f"could not set the configs of {name}: {message}")


def _registered(name: str) -> Topic:
    for topic in every_topic():
        if topic.name == name:
            return topic
    raise SystemExit(f"millrace-topics: {name!r} is not a registered topic")


def main(argv: list[str] | None = None) -> None:
    """``millrace-topics``: create the registry's topics on the configured broker, idempotently
    (``create``, the default), or grow existing ones (``grow``)."""
    from millrace_common.platform.environment import load_settings

    parser = argparse.ArgumentParser(prog="millrace-topics", description=main.__doc__)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("create", help="create missing topics; set the layout's configs on existing ones")
    grow = commands.add_parser(
        "grow",
        help="grow topics to the partitions the settings say, or one topic to --partitions",
        description=ORDER_WARNING,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    grow.add_argument("--topic", help="a registered topic, e.g. nodes.ready.http (without the namespace)")
    grow.add_argument("--partitions", type=int, help="the new count (with --topic); never fewer than now")
    grow.add_argument("--yes", action="store_true", help="grow; without it, only say what would grow")
    args = parser.parse_args(argv)
    settings = load_settings(ServiceSettings, "millrace-topics")
    namespace = Namespace(settings.namespace)
    layout = layout_of(settings)
    if args.command == "grow":
        _grow_command(parser, args, settings, namespace, layout)
        return
    try:
        report = asyncio.run(ensure_topics(settings, namespace, layout))
    except TopicsRefused as refused:
        print(f"millrace-topics: {refused}", file=sys.stderr)
        raise SystemExit(1) from None
    print(
        f"topics: {len(report.created)} created, {len(every_topic()) - len(report.created)} already there",
        file=sys.stderr,
    )
    for name, (have, wanted) in sorted(report.behind.items()):
        print(
            f"  {name} has {have} partitions, the settings say {wanted}: see `millrace-topics grow --help` "
            "before growing it",
            file=sys.stderr,
        )


def _grow_command(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    settings: ServiceSettings,
    namespace: Namespace,
    layout: TopicLayout,
) -> None:
    if args.partitions is not None and args.topic is None:
        parser.error("--partitions needs --topic")
    topics = [_registered(args.topic)] if args.topic else every_topic()
    wanted = {
        namespace.topic(t): args.partitions if args.partitions is not None else layout.partitions_of(t)
        for t in topics
    }
    plan = asyncio.run(grow_topics(settings, wanted, explicit=args.partitions is not None, apply=args.yes))
    for refusal in plan.refused:
        print(f"millrace-topics: refused: {refusal}", file=sys.stderr)
    if plan.refused:
        raise SystemExit(2)
    if not plan.grow:
        print("millrace-topics: every topic has at least the partitions asked for", file=sys.stderr)
        return
    for growth in plan.grow:
        verb = "grew" if args.yes else "would grow"
        print(f"  {verb} {growth.topic} from {growth.partitions} to {growth.to} partitions", file=sys.stderr)
    if not args.yes:
        print(f"\n{ORDER_WARNING}\n\nNothing changed: add --yes to grow.", file=sys.stderr)


async def ensure_tenant_topic(
    kafka: KafkaClientSettings,
    namespace: Namespace,
    topic: Topic,
    tenant_id: str,
    *,
    max_message_bytes: int = 1_000_000,
) -> bool:
    """Create ``tenant_id``'s topic of the per-tenant family ``topic`` unless it exists, shaped like the
    registry's topics (a service's settings give the whole layout, bare Kafka settings the replication
    factor and ``min.insync.replicas``); True if created."""
    name = namespace.tenant_topic(topic, tenant_id)
    if isinstance(kafka, ServiceSettings):
        layout = layout_of(kafka)
    else:
        layout = TopicLayout(
            replication_factor=kafka.kafka_replication_factor,
            min_insync_replicas=kafka.kafka_min_insync_replicas,
            max_message_bytes=max_message_bytes,
        )
    shape = layout.shape_of(topic)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=kafka.kafka_bootstrap, request_timeout_ms=30_000, **client_options(kafka)
    )
    await admin.start()
    try:
        if name in set(await admin.list_topics()):
            return False
        answer = await admin.create_topics(
            [NewTopic(name, shape.partitions, layout.replication_factor, topic_configs=shape.configs)]
        )
        # The client returns the broker's answer; it raises for none of it.
        for _, code, *message in answer.topic_errors:
            if code == TopicAlreadyExistsError.errno:
                return False
            if code:
                raise TopicsRefused(
                    f"the broker refused to create {name}: {for_code(code).__name__} "
                    f"{message[0] if message else ''}".strip()
                )
        return True
    finally:
        await admin.close()
