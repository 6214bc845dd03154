"""The Kafka client settings: what a secured cluster needs, refused at start when incomplete (each
refusal naming its variable), and the one set of client options every Kafka client is built with."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from millrace_common.platform.kafka_security import client_options
from millrace_common.platform.settings import KafkaClientSettings, ServiceSettings
from pydantic import ValidationError

from tests.support.tls import TlsFiles, write_tls_files

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("no_millrace_environment")]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return write_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_text("s3cret-from-file\n")
    return path


def refusal(**settings: object) -> str:
    with pytest.raises(ValidationError) as refused:
        KafkaClientSettings(**settings)
    return str(refused.value)


def test_by_default_a_client_talks_plaintext_to_the_local_broker():
    settings = KafkaClientSettings()
    assert client_options(settings) == {"security_protocol": "PLAINTEXT"}
    assert settings.kafka_replication_factor == 1 and settings.kafka_min_insync_replicas == 1


def test_sasl_ssl_with_scram_gives_user_password_and_a_verifying_tls_context(tls: TlsFiles, password_file):
    settings = KafkaClientSettings(
        kafka_bootstrap=" broker-1:9093, broker-2:9093 ,broker-3:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="millrace",
        kafka_sasl_password_file=password_file,
        kafka_ssl_ca_file=tls.ca,
    )
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "millrace"
    assert options["sasl_plain_password"] == "s3cret-from-file"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert settings.kafka_bootstrap == "broker-1:9093,broker-2:9093,broker-3:9093"
    assert settings.kafka_bootstrap_servers == ["broker-1:9093", "broker-2:9093", "broker-3:9093"]
    assert "s3cret" not in repr(settings)


def test_the_settings_come_from_the_environment_every_service_shares(monkeypatch, tls: TlsFiles):
    monkeypatch.setenv("MILLRACE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("MILLRACE_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("MILLRACE_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("MILLRACE_KAFKA_SASL_PASSWORD", "pw")
    monkeypatch.setenv("MILLRACE_KAFKA_SSL_CA_FILE", str(tls.ca))
    monkeypatch.setenv("MILLRACE_KAFKA_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("MILLRACE_KAFKA_MIN_INSYNC_REPLICAS", "2")
    settings = ServiceSettings()
    assert client_options(settings)["sasl_mechanism"] == "SCRAM-SHA-256"
    assert (settings.kafka_replication_factor, settings.kafka_min_insync_replicas) == (3, 2)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        (
            {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_username": "u", "kafka_sasl_password": "p"},
            "MILLRACE_KAFKA_SASL_MECHANISM",
        ),
        (
            {
                "kafka_security_protocol": "SASL_PLAINTEXT",
                "kafka_sasl_mechanism": "PLAIN",
                "kafka_sasl_password": "p",
            },
            "MILLRACE_KAFKA_SASL_USERNAME",
        ),
        (
            {
                "kafka_security_protocol": "SASL_PLAINTEXT",
                "kafka_sasl_mechanism": "PLAIN",
                "kafka_sasl_username": "u",
            },
            "MILLRACE_KAFKA_SASL_PASSWORD_FILE",
        ),
        ({"kafka_sasl_username": "u"}, "MILLRACE_KAFKA_SASL_USERNAME is set but"),
        ({"kafka_sasl_mechanism": "PLAIN"}, "MILLRACE_KAFKA_SASL_MECHANISM is set but"),
        ({"kafka_ssl_ca_file": "/etc/hostname"}, "MILLRACE_KAFKA_SSL_CA_FILE is set but"),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_ca_file": "/nonexistent/ca.pem"},
            "MILLRACE_KAFKA_SSL_CA_FILE: cannot read /nonexistent/ca.pem",
        ),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_key_file": "/etc/hostname"},
            "MILLRACE_KAFKA_SSL_KEY_FILE is set without MILLRACE_KAFKA_SSL_CERT_FILE",
        ),
        (
            {"kafka_replication_factor": 1, "kafka_min_insync_replicas": 2},
            "MILLRACE_KAFKA_MIN_INSYNC_REPLICAS",
        ),
        (
            {"kafka_bootstrap": "broker-1:9093,broker-2"},
            "MILLRACE_KAFKA_BOOTSTRAP: 'broker-2' is not host:port",
        ),
        ({"kafka_bootstrap": " , "}, "MILLRACE_KAFKA_BOOTSTRAP names no broker"),
    ],
)
def test_incomplete_or_contradictory_security_settings_are_refused_naming_the_variable(settings, named):
    assert named in refusal(**settings)


def test_both_a_password_and_a_password_file_are_refused(password_file: Path):
    message = refusal(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="u",
        kafka_sasl_password="p",
        kafka_sasl_password_file=password_file,
    )
    assert "MILLRACE_KAFKA_SASL_PASSWORD and MILLRACE_KAFKA_SASL_PASSWORD_FILE are both set" in message


def test_an_unreadable_or_empty_password_file_is_refused_at_start(tmp_path: Path):
    sasl = {
        "kafka_security_protocol": "SASL_PLAINTEXT",
        "kafka_sasl_mechanism": "PLAIN",
        "kafka_sasl_username": "u",
    }
    missing = refusal(**sasl, kafka_sasl_password_file=tmp_path / "absent")
    assert f"MILLRACE_KAFKA_SASL_PASSWORD_FILE: cannot read {tmp_path / 'absent'}" in missing
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert f"MILLRACE_KAFKA_SASL_PASSWORD_FILE: {empty} is empty" in refusal(
        **sasl, kafka_sasl_password_file=empty
    )


def test_an_unknown_protocol_or_mechanism_is_refused():
    assert "kafka_security_protocol" in refusal(kafka_security_protocol="TLS")
    assert "kafka_sasl_mechanism" in refusal(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="GSSAPI",
        kafka_sasl_username="u",
        kafka_sasl_password="p",
    )
