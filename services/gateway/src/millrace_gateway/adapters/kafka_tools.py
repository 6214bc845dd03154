"""Kafka's own administration tools, run from Kafka's jars: ACLs (``org.apache.kafka.tools.AclCommand``,
what ``kafka-acls.sh`` runs) and SCRAM users (``kafka.admin.ConfigCommand``, ``kafka-configs.sh``).

aiokafka has no API for either, and a second Kafka client library for two calls would be a second
client to configure and keep secure; these tools are the broker's own, ship in the jars the local
deployment runs the broker from, and take the same client properties as any Java client. They connect
with the gateway's Kafka settings (``MILLRACE_KAFKA_*``), written to a client-properties file that only
lives while a tool runs. Passwords never go on a command line (``--add-config-file``)."""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from millrace_gateway.domain.grants import Acl
from millrace_gateway.settings import GatewaySettings

ACL_COMMAND = "org.apache.kafka.tools.AclCommand"
CONFIG_COMMAND = "kafka.admin.ConfigCommand"
JVM_OPTIONS = ("-Xms32m", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true")
SCRAM_MECHANISM = "SCRAM-SHA-512"


class KafkaToolFailed(Exception):
    """A tool exited non-zero; the message is its last lines of output (the broker's refusal)."""


_RESOURCE = re.compile(
    r"Current ACLs for resource `ResourcePattern\(resourceType=(?P<type>\w+), name=(?P<name>[^,]+),"
    r" patternType=(?P<pattern>\w+)\)`"
)
_BINDING = re.compile(
    r"\(principal=(?P<principal>.+?), host=(?P<host>[^,]+), operation=(?P<operation>\w+),"
    r" permissionType=(?P<permission>\w+)\)"
)


def parse_acl_listing(text: str) -> frozenset[Acl]:
    """The ALLOW bindings of ``AclCommand --list`` output (DENY bindings are none of the grants')."""
    found: set[Acl] = set()
    resource: re.Match[str] | None = None
    for line in text.splitlines():
        if header := _RESOURCE.search(line):
            resource = header
        elif (binding := _BINDING.search(line)) and resource is not None and binding["permission"] == "ALLOW":
            found.add(
                Acl(
                    binding["principal"],
                    resource["type"],
                    resource["pattern"],
                    resource["name"],
                    binding["operation"],
                    binding["host"],
                )
            )
    return frozenset(found)


def client_properties(settings: GatewaySettings) -> dict[str, str]:
    """The Java client properties of the gateway's Kafka settings (``MILLRACE_KAFKA_SECURITY_PROTOCOL``,
    ``..._SASL_*``, ``..._SSL_*``), as ``kafka_security.client_options`` reads them for aiokafka."""
    protocol = settings.kafka_security_protocol
    found = {"security.protocol": protocol}
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        mechanism = settings.kafka_sasl_mechanism or SCRAM_MECHANISM
        module = (
            "org.apache.kafka.common.security.plain.PlainLoginModule"
            if mechanism == "PLAIN"
            else "org.apache.kafka.common.security.scram.ScramLoginModule"
        )
        secret = settings.kafka_sasl_secret
        password = secret.get_secret_value() if secret is not None else ""
        found["sasl.mechanism"] = mechanism
        found["sasl.jaas.config"] = (
            f'{module} required username="{_jaas(settings.kafka_sasl_username or "")}"'
            f' password="{_jaas(password)}";'
        )
    if protocol in ("SSL", "SASL_SSL"):
        if settings.kafka_ssl_ca_file is not None:
            found["ssl.truststore.type"] = "PEM"
            found["ssl.truststore.location"] = str(settings.kafka_ssl_ca_file)
        if settings.kafka_ssl_cert_file is not None and settings.kafka_ssl_key_file is not None:
            found["ssl.keystore.type"] = "PEM"
            found["ssl.keystore.certificate.chain"] = Path(settings.kafka_ssl_cert_file).read_text()
            found["ssl.keystore.key"] = Path(settings.kafka_ssl_key_file).read_text()
    return found


def _jaas(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def properties_text(properties: Mapping[str, str]) -> str:
    """A Java properties file of ``properties`` (backslashes and line breaks escaped)."""

    def escaped(value: str) -> str:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "")

    return "".join(f"{key}={escaped(value)}\n" for key, value in properties.items())


def tools_classpath(settings: GatewaySettings) -> str:
    """``MILLRACE_KAFKA_TOOLS_CLASSPATH``, or the jars ``deploy/local`` runs Kafka from."""
    if settings.kafka_tools_classpath:
        return settings.kafka_tools_classpath
    for root in (Path.cwd(), *Path.cwd().parents):
        found = sorted((root / ".cache" / "kafka").glob("*/libs"))
        if found:
            return f"{found[-1]}/*"
    raise KafkaToolFailed(
        "Kafka's tools were not found: set MILLRACE_KAFKA_TOOLS_CLASSPATH to Kafka's libs"
        " (e.g. '/opt/kafka/libs/*')"
    )


@contextmanager
def _private_file(text: str) -> Iterator[Path]:
    descriptor, name = tempfile.mkstemp(prefix="millrace-", suffix=".properties")
    try:
        with os.fdopen(descriptor, "w") as handle:  # mkstemp made it 0600
            handle.write(text)
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


class KafkaTools:
    """The ACL and SCRAM operations ``millrace-admin`` needs, each one run of a tool."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings

    async def _run(self, main: str, *args: str) -> str:
        settings = self._settings
        with _private_file(properties_text(client_properties(settings))) as config:
            process = await asyncio.create_subprocess_exec(
                "java",
                *JVM_OPTIONS,
                "-cp",
                tools_classpath(settings),
                main,
                "--bootstrap-server",
                settings.kafka_bootstrap,
                "--command-config",
                str(config),
                *args,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, "KAFKA_LOG4J_OPTS": ""},
            )
            output, _ = await process.communicate()
        text = output.decode(errors="replace")
        if process.returncode != 0 or "Error while executing" in text:
            lines = [line for line in text.splitlines() if line.strip() and not line.startswith("\t")]
            said = [line for line in lines if line.startswith("Error")] or lines[-3:]
            raise KafkaToolFailed(" / ".join(said) or f"{main} exited {process.returncode}")
        return text

    async def acls(self) -> frozenset[Acl]:
        """Every ALLOW ACL the broker holds."""
        return parse_acl_listing(await self._run(ACL_COMMAND, "--list"))

    async def add(self, acl: Acl) -> None:
        await self._run(ACL_COMMAND, "--add", *_binding_args(acl))

    async def remove(self, acl: Acl) -> None:
        await self._run(ACL_COMMAND, "--remove", "--force", *_binding_args(acl))

    async def set_scram_password(self, user: str, password: str) -> None:
        """Create the SCRAM user ``user`` (or give it a new password)."""
        # In a file the value goes without the brackets --add-config needs around it.
        entry = f"{SCRAM_MECHANISM}=iterations=8192,password={password}\n"
        with _private_file(entry) as entries:
            await self._run(
                CONFIG_COMMAND,
                "--alter",
                "--entity-type",
                "users",
                "--entity-name",
                user,
                "--add-config-file",
                str(entries),
            )


def _binding_args(acl: Acl) -> list[str]:
    resource = {"TOPIC": "--topic", "GROUP": "--group", "TRANSACTIONAL_ID": "--transactional-id"}
    return [
        "--allow-principal",
        acl.principal,
        "--allow-host",
        acl.host,
        "--operation",
        "".join(word.title() for word in acl.operation.split("_")),  # WRITE -> Write
        resource[acl.resource_type],
        acl.name,
        "--resource-pattern-type",
        acl.pattern_type.lower(),
    ]
