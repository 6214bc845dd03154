"""Where the tests find Kafka and PostgreSQL, and how each test gets a namespace of its own."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient
from millrace_common.contracts.topics import Namespace, every_topic
from millrace_common.platform.migrate import upgrade
from millrace_common.platform.settings import ServiceSettings
from millrace_common.platform.topic_admin import ensure_topics
from sqlalchemy import create_engine, text

from tests.support.kafka import kafka_client


@dataclass(frozen=True)
class Infra:
    kafka_bootstrap: str
    database_url: str

    def settings(self, namespace: str, **overrides: object) -> ServiceSettings:
        return ServiceSettings(
            kafka_bootstrap=self.kafka_bootstrap,
            database_url=self.database_url,
            namespace=namespace,
            **overrides,
        )

    def env(self, namespace: str) -> dict[str, str]:
        return {
            "MILLRACE_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "MILLRACE_DATABASE_URL": self.database_url,
            "MILLRACE_NAMESPACE": namespace,
        }


class InfraMissing(RuntimeError):
    pass


@contextmanager
def locate_infra() -> Iterator[Infra]:
    """The configured endpoints; else Kafka and PostgreSQL from testcontainers when Docker runs."""
    kafka = os.environ.get("MILLRACE_KAFKA_BOOTSTRAP")
    database = os.environ.get("MILLRACE_DATABASE_URL")
    if kafka and database:
        yield Infra(kafka, database)
        return
    if not _docker_engine_available():
        raise InfraMissing(
            "no Kafka/PostgreSQL for the tests: "
            "MILLRACE_KAFKA_BOOTSTRAP and MILLRACE_DATABASE_URL are not set "
            "and no Docker engine answers for testcontainers; run `make test`, which starts both"
        )
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    with (
        KafkaContainer().with_kraft() as kafka_container,
        PostgresContainer("postgres:16", driver="psycopg") as pg,
    ):
        yield Infra(kafka_container.get_bootstrap_server(), pg.get_connection_url())


def _docker_engine_available() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


def create_namespace(infra: Infra, namespace: str) -> None:
    """A database schema at the newest migration and every topic, all under ``namespace``."""
    upgrade(infra.settings(namespace))
    asyncio.run(ensure_topics(infra.settings(namespace), Namespace(namespace)))


def drop_namespace(infra: Infra, namespace: str) -> None:
    engine = create_engine(infra.database_url)
    with engine.begin() as connection:
        connection.execute(text(f'drop schema if exists "{namespace}" cascade'))
    engine.dispose()
    asyncio.run(_delete_topics(infra, namespace))


async def _delete_topics(infra: Infra, namespace: str) -> None:
    admin = AIOKafkaAdminClient(**kafka_client(infra.kafka_bootstrap))
    await admin.start()
    try:
        await admin.delete_topics([Namespace(namespace).topic(t) for t in every_topic()])
    finally:
        await admin.close()
