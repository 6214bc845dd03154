"""What grants mean on the broker (``millrace_gateway.domain.grants``), the plan that reconciles the
broker's ACLs with them, and reading Kafka's own tools (``adapters.kafka_tools``, pure parts)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_common.contracts.topics import RECORDS_INGRESS, Namespace
from millrace_gateway.adapters.kafka_tools import (
    _binding_args,
    client_properties,
    parse_acl_listing,
    properties_text,
)
from millrace_gateway.domain.grants import (
    Acl,
    BadPrincipal,
    Grant,
    GrantKind,
    acls_of,
    granting,
    managed,
    plan,
    principal_of,
    revoking,
)
from millrace_gateway.settings import GatewaySettings

pytestmark = pytest.mark.unit

NAMESPACE = Namespace("ns1")
principals = st.sampled_from(["User:crm", "User:erp", "User:shop"])
tenant_ids = st.sampled_from(["acme", "acme.eu", "beta", "b_c"])
grants = st.builds(Grant, principals, tenant_ids, st.just(GrantKind.RECORDS_INGRESS))


def _foreign() -> st.SearchStrategy[Acl]:
    """ACLs no grant of the namespace decides: other resources, prefixes, another namespace's topics."""
    return st.one_of(
        st.builds(
            Acl,
            principals,
            st.just("TOPIC"),
            st.just("LITERAL"),
            st.just("ns1.records.events"),
            st.just("READ"),
        ),
        st.builds(
            Acl, principals, st.just("GROUP"), st.just("LITERAL"), st.just("ns1.trigger"), st.just("READ")
        ),
        st.builds(
            Acl,
            principals,
            st.just("TOPIC"),
            st.just("PREFIXED"),
            st.just("ns1.tenant.acme."),
            st.just("WRITE"),
        ),
        st.builds(
            Acl,
            principals,
            st.just("TOPIC"),
            st.just("LITERAL"),
            tenant_ids.map(lambda t: Namespace("ns2").tenant_topic(RECORDS_INGRESS, t)),
            st.just("WRITE"),
        ),
    )


def _stray() -> st.SearchStrategy[Acl]:
    """ACLs on managed topics that a grant may or may not mean."""
    return st.builds(
        Acl,
        principals,
        st.just("TOPIC"),
        st.just("LITERAL"),
        tenant_ids.map(lambda t: NAMESPACE.tenant_topic(RECORDS_INGRESS, t)),
        st.sampled_from(["WRITE", "READ"]),
    )


present_acls = st.frozensets(st.one_of(_foreign(), _stray()), max_size=12)


def applied(present: frozenset[Acl], steps) -> frozenset[Acl]:
    return (present - set(steps.remove)) | set(steps.add)


def test_a_grant_is_a_literal_write_on_its_tenant_s_ingress_topic():
    meant = acls_of([Grant("User:crm", "acme.eu", GrantKind.RECORDS_INGRESS)], NAMESPACE)
    assert meant == {Acl("User:crm", "TOPIC", "LITERAL", "ns1.tenant.acme_deu.records.ingress", "WRITE")}


@given(st.lists(grants, max_size=8), present_acls)
def test_after_the_plan_the_broker_holds_what_the_grants_mean_and_every_foreign_acl(
    granted: list[Grant], present: frozenset[Acl]
):
    meant = acls_of(granted, NAMESPACE)
    after = applied(present, plan(meant, present, NAMESPACE))
    assert {a for a in after if managed(a, NAMESPACE)} == meant
    assert {a for a in after if not managed(a, NAMESPACE)} == {
        a for a in present if not managed(a, NAMESPACE)
    }


@given(st.lists(grants, max_size=8), present_acls)
def test_a_second_plan_changes_nothing(granted: list[Grant], present: frozenset[Acl]):
    meant = acls_of(granted, NAMESPACE)
    after = applied(present, plan(meant, present, NAMESPACE))
    assert plan(meant, after, NAMESPACE).empty


@given(st.lists(grants, max_size=8), grants)
def test_a_grant_then_its_revocation_leave_the_broker_as_the_remaining_grants_mean(
    granted: list[Grant], grant: Grant
):
    remaining = [g for g in granted if g != grant]
    before = acls_of(remaining, NAMESPACE)
    with_it = applied(before, granting(grant, NAMESPACE))
    assert with_it == acls_of([*remaining, grant], NAMESPACE)
    assert applied(with_it, revoking(grant, remaining, NAMESPACE)) == before


def test_revoking_keeps_an_acl_that_another_grant_still_means():
    grant = Grant("User:crm", "acme", GrantKind.RECORDS_INGRESS)
    assert revoking(grant, [grant], NAMESPACE).empty
    assert len(revoking(grant, [], NAMESPACE).remove) == 1


def test_principals_are_scram_user_names():
    assert principal_of("crm-acme") == "User:crm-acme"
    assert principal_of("User:crm@acme.test") == "User:crm@acme.test"
    for bad in ("", "a,b", "a=b", "a b", "x" * 129, "User:"):
        with pytest.raises(BadPrincipal):
            principal_of(bad)


TOPIC = "ns1.tenant.acme.records.ingress"
LISTING = f"""\
Current ACLs for resource `ResourcePattern(resourceType=TOPIC, name={TOPIC}, patternType=LITERAL)`:
\t(principal=User:crm, host=*, operation=WRITE, permissionType=ALLOW)
\t(principal=User:bad, host=*, operation=WRITE, permissionType=DENY)

Current ACLs for resource `ResourcePattern(resourceType=GROUP, name=ns1.trigger, patternType=PREFIXED)`:
\t(principal=User:svc, host=10.0.0.1, operation=READ, permissionType=ALLOW)
"""


def test_the_acl_listing_of_kafka_s_tool_is_read_as_its_allow_bindings():
    assert parse_acl_listing(LISTING) == {
        Acl("User:crm", "TOPIC", "LITERAL", "ns1.tenant.acme.records.ingress", "WRITE"),
        Acl("User:svc", "GROUP", "PREFIXED", "ns1.trigger", "READ", "10.0.0.1"),
    }
    assert parse_acl_listing("") == frozenset()


def test_an_acl_is_given_to_the_tool_as_its_options():
    acl = Acl("User:crm", "TOPIC", "LITERAL", "ns1.tenant.acme.records.ingress", "IDEMPOTENT_WRITE")
    assert _binding_args(acl) == [
        "--allow-principal",
        "User:crm",
        "--allow-host",
        "*",
        "--operation",
        "IdempotentWrite",
        "--topic",
        "ns1.tenant.acme.records.ingress",
        "--resource-pattern-type",
        "literal",
    ]


def test_the_tools_connect_with_the_gateway_s_kafka_settings(tmp_path: Path):
    plain = GatewaySettings(kafka_bootstrap="k:9092", kafka_security_protocol="PLAINTEXT")
    assert client_properties(plain) == {"security.protocol": "PLAINTEXT"}
    (tmp_path / "ca.pem").write_text("CA")
    (tmp_path / "password").write_text('se"cret\n')
    secured = GatewaySettings(
        kafka_bootstrap="k:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="millrace",
        kafka_sasl_password_file=tmp_path / "password",
        kafka_ssl_ca_file=tmp_path / "ca.pem",
    )
    assert client_properties(secured) == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required"
        ' username="millrace" password="se\\"cret";',
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(tmp_path / "ca.pem"),
    }


def test_client_properties_are_written_as_a_java_properties_file():
    text = properties_text({"a": "x\\y", "b": "line1\nline2", "sasl.jaas.config": 'M required user="u";'})
    assert text == 'a=x\\\\y\nb=line1\\nline2\nsasl.jaas.config=M required user="u";\n'
