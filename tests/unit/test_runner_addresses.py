"""The SSRF guard's decisions: which hosts and addresses a node may reach."""

from __future__ import annotations

import socket
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_node_runner.domain.addresses import (
    AddressKind,
    TargetPolicy,
    classify,
    parse_ip_literal,
    refuse_address,
    refuse_addresses,
    refuse_url,
)

pytestmark = pytest.mark.unit

STRICT = TargetPolicy()
LOOPBACK_ONLY = TargetPolicy.from_settings(False, ["127.0.0.0/8", "::1/128"])
EVERYTHING_PRIVATE = TargetPolicy(allow_private=True)


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
        (
            "http://metadata.google.internal/computeMetadata/v1/",
            "metadata.google.internal is a cloud metadata service",
        ),
        ("http://METADATA.Google.Internal./", "metadata.google.internal is a cloud metadata service"),
        ("http://127.1/", "127.0.0.1 is a loopback address"),
        ("http://0.0.0.0:8080/", "0.0.0.0 is a unspecified address"),
        ("http://[::1]/", "::1 is a loopback address"),
        ("http://2130706433/", "127.0.0.1 is a loopback address"),
        ("http://0x7f000001/", "127.0.0.1 is a loopback address"),
        ("http://017700000001/", "127.0.0.1 is a loopback address"),
        ("http://[::ffff:169.254.169.254]/", "::ffff:a9fe:a9fe is a cloud metadata address"),
        ("http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe is a cloud metadata address"),
        ("http://10.0.0.1/", "10.0.0.1 is a private address"),
        ("http://100.64.0.1/", "100.64.0.1 is a carrier-grade NAT address"),
        ("http://169.254.10.1/", "169.254.10.1 is a link-local address"),
        ("http://224.0.0.1/", "224.0.0.1 is a multicast address"),
        ("http://[fd00::1]/", "fd00::1 is a private address"),
        ("http://[fe80::1]/", "fe80::1 is a link-local address"),
        ("http://[2002:7f00:1::]/", "2002:7f00:1:: is a loopback address"),
        ("file:///etc/passwd", "file:// is not allowed; only http and https are"),
        ("gopher://127.0.0.1:6379/_INFO", "gopher:// is not allowed; only http and https are"),
        ("ftp://example.com/", "ftp:// is not allowed"),
        ("//example.com/x", "a URL without a scheme is not allowed"),
        ("http:///path-only", "the URL has no host"),
    ],
)
def test_the_ssrf_list_is_refused_from_the_url_alone(url: str, said: str):
    refusal = refuse_url(url, STRICT)

    assert refusal is not None and said in refusal.reason


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/x",
        "http://93.184.216.34/",
        "https://[2606:4700::1111]/",
        "http://api.test:8443/v1",
    ],
)
def test_public_addresses_and_names_pass_the_url_check(url: str):
    assert refuse_url(url, STRICT) is None


def test_a_tenant_may_open_loopback_without_opening_private_networks():
    assert refuse_url("http://127.0.0.1:8080/", LOOPBACK_ONLY) is None
    assert refuse_url("http://[::1]:8080/", LOOPBACK_ONLY) is None
    assert refuse_url("http://10.0.0.1/", LOOPBACK_ONLY) is not None
    assert refuse_url("http://192.168.1.1/", LOOPBACK_ONLY) is not None


def test_allowing_private_targets_opens_private_kinds_but_never_metadata_multicast_or_unspecified():
    for url in (
        "http://10.0.0.1/",
        "http://127.0.0.1/",
        "http://100.64.1.1/",
        "http://169.254.1.1/",
        "http://[fd00::5]/",
    ):
        assert refuse_url(url, EVERYTHING_PRIVATE) is None, url
    for url in (
        "http://169.254.169.254/",
        "http://[::ffff:169.254.169.254]/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://255.255.255.255/",
        "http://metadata.google.internal/",
    ):
        assert refuse_url(url, EVERYTHING_PRIVATE) is not None, url
    listed = TargetPolicy.from_settings(True, ["169.254.169.254/32"])
    assert refuse_url("http://169.254.169.254/", listed) is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("[::1]", "::1"),
        ("::ffff:169.254.169.254", "::ffff:a9fe:a9fe"),
        ("10.0.0.1", "10.0.0.1"),
    ],
)
def test_hosts_are_read_as_the_c_resolver_reads_them(text: str, expected: str):
    assert parse_ip_literal(text) == ip_address(expected)


@pytest.mark.parametrize(
    "text", ["example.com", "1.2.3.4.5", "256.1.1.1", "08.1.1.1", "0x", "1..1", "", "::zz"]
)
def test_names_and_malformed_numbers_are_not_literals(text: str):
    assert parse_ip_literal(text) is None


_PART = st.one_of(
    st.integers(0, 2**32).map(str),
    st.integers(0, 2**32).map(lambda n: f"0{n:o}"),
    st.integers(0, 2**32).map(lambda n: f"0x{n:x}"),
    st.sampled_from(["", "08", "0x", "x1", "-1", "1a"]),
)


@given(st.lists(_PART, min_size=1, max_size=5).map(".".join))
def test_literal_parsing_agrees_with_the_c_librarys_inet_aton(text: str):
    try:
        expected: IPv4Address | None = IPv4Address(socket.inet_aton(text))
    except OSError:
        expected = None
    assert parse_ip_literal(text) == expected


@given(st.integers(0, 2**32 - 1))
def test_an_ipv4_address_is_judged_the_same_inside_every_ipv6_form_that_carries_it(number: int):
    inner = IPv4Address(number)
    mapped = IPv6Address(f"::ffff:{inner}")
    nat64 = IPv6Address((0x0064FF9B << 96) | number)
    six_to_four = IPv6Address((0x2002 << 112) | (number << 80))
    kind = classify(inner)

    assert classify(mapped) == classify(nat64) == classify(six_to_four) == kind


def test_a_name_is_refused_when_any_of_its_addresses_is():
    mixed = [ip_address("93.184.216.34"), ip_address("10.0.0.1")]

    refusal = refuse_addresses("rebind.test", mixed, STRICT)

    assert (
        refusal is not None
        and refusal.reason
        == "rebind.test: 10.0.0.1 is a private address; the tenant's network policy does not allow it"
    )
    assert refuse_addresses("rebind.test", [ip_address("93.184.216.34")], STRICT) is None
    assert refuse_addresses("nowhere.test", [], STRICT) is not None


def test_kinds_of_well_known_addresses():
    assert classify(ip_address("8.8.8.8")) is AddressKind.PUBLIC
    assert classify(ip_address("192.0.2.1")) is AddressKind.RESERVED
    assert classify(ip_address("2001:db8::1")) is AddressKind.RESERVED
    assert classify(ip_address("fd00:ec2::254")) is AddressKind.METADATA
    assert classify(ip_address("100.100.100.200")) is AddressKind.METADATA
    assert classify(ip_address("::")) is AddressKind.UNSPECIFIED
    assert classify(ip_address("fe80::1%eth0")) is AddressKind.LINK_LOCAL


def test_unparseable_policy_entries_are_ignored():
    policy = TargetPolicy.from_settings(False, ["127.0.0.0/8", "not a network", " ::1 "])

    assert [str(n) for n in policy.allowed_networks] == ["127.0.0.0/8", "::1/128"]
    assert refuse_address(ip_address("127.0.0.2"), policy) is None
