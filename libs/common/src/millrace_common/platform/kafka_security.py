"""How every Kafka client of Millrace connects: one function turns the settings into the aiokafka
options (protocol, SASL user and password, TLS context). Nothing else builds Kafka security options,
so a consumer, a producer, an admin client, a test and a benchmark all reach a secured cluster
alike."""

from __future__ import annotations

import functools
import ssl
from pathlib import Path
from typing import Any

from aiokafka.helpers import create_ssl_context

from millrace_common.platform.settings import KafkaClientSettings


def client_options(settings: KafkaClientSettings) -> dict[str, Any]:
    """The keyword arguments every ``AIOKafkaConsumer``, ``AIOKafkaProducer`` and
    ``AIOKafkaAdminClient`` takes besides its own: ``security_protocol`` and, as the protocol needs,
    ``ssl_context`` and ``sasl_mechanism``/``sasl_plain_username``/``sasl_plain_password``. The
    bootstrap servers are not among them (``settings.kafka_bootstrap``)."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = tls_context(
            settings.kafka_ssl_ca_file, settings.kafka_ssl_cert_file, settings.kafka_ssl_key_file
        )
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        secret = settings.kafka_sasl_secret
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = secret.get_secret_value() if secret is not None else None
    return options


@functools.lru_cache(maxsize=8)
def tls_context(ca_file: Path | None, cert_file: Path | None, key_file: Path | None) -> ssl.SSLContext:
    """A client TLS context that verifies the brokers' certificates and host names against
    ``ca_file`` (the system's trust store when unset), presenting ``cert_file`` when given. One per
    process and set of files: contexts are safe to share and loading the files costs a few ms."""
    return create_ssl_context(
        cafile=str(ca_file) if ca_file else None,
        certfile=str(cert_file) if cert_file else None,
        keyfile=str(key_file) if key_file else None,
        # An encrypted key fails to load instead of prompting for its password on a terminal.
        password="" if cert_file else None,
    )
