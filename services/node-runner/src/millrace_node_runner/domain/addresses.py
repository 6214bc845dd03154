"""Which network targets a node may reach: the SSRF guard's decisions. Pure.

A URL is refused when its scheme is not http or https, when its host names a cloud metadata service,
or when any address it stands for is not public and the tenant's :class:`TargetPolicy` does not allow
it. Hosts are read the way C resolvers read them, so ``127.1``, ``2130706433``, ``0x7f000001`` and
``017700000001`` are all 127.0.0.1, and IPv6 forms that carry an IPv4 address (``::ffff:a.b.c.d``,
NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``) are judged by the IPv4 address inside.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network
from urllib.parse import urlsplit

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

ALLOWED_SCHEMES = frozenset({"http", "https"})


class AddressKind(StrEnum):
    PUBLIC = "public"
    LOOPBACK = "loopback"
    PRIVATE = "private"
    LINK_LOCAL = "link-local"
    SHARED = "carrier-grade NAT"
    RESERVED = "reserved"
    UNSPECIFIED = "unspecified"
    MULTICAST = "multicast"
    BROADCAST = "broadcast"
    METADATA = "cloud metadata"


# Kinds a tenant may open up: ``allow_private`` opens all of PRIVATE_KINDS, ``allowed_networks`` open
# any of these where they list the address. The rest are never a legitimate target of a node.
PRIVATE_KINDS = frozenset(
    {AddressKind.LOOPBACK, AddressKind.PRIVATE, AddressKind.LINK_LOCAL, AddressKind.SHARED}
)
NEVER_ALLOWED = frozenset(
    {AddressKind.UNSPECIFIED, AddressKind.MULTICAST, AddressKind.BROADCAST, AddressKind.METADATA}
)

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    {
        IPv4Address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean
        IPv4Address("169.254.170.2"),  # AWS ECS task metadata
        IPv4Address("100.100.100.200"),  # Alibaba Cloud
        IPv6Address("fd00:ec2::254"),  # AWS over IPv6
    }
)
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
    }
)

_V4_TABLE: tuple[tuple[IPv4Network, AddressKind], ...] = tuple(
    (IPv4Network(cidr), kind)
    for cidr, kind in (
        ("255.255.255.255/32", AddressKind.BROADCAST),
        ("0.0.0.0/8", AddressKind.UNSPECIFIED),
        ("127.0.0.0/8", AddressKind.LOOPBACK),
        ("10.0.0.0/8", AddressKind.PRIVATE),
        ("172.16.0.0/12", AddressKind.PRIVATE),
        ("192.168.0.0/16", AddressKind.PRIVATE),
        ("100.64.0.0/10", AddressKind.SHARED),
        ("169.254.0.0/16", AddressKind.LINK_LOCAL),
        ("224.0.0.0/4", AddressKind.MULTICAST),
        ("240.0.0.0/4", AddressKind.RESERVED),
        ("192.0.0.0/24", AddressKind.RESERVED),
        ("192.0.2.0/24", AddressKind.RESERVED),
        ("198.18.0.0/15", AddressKind.RESERVED),
        ("198.51.100.0/24", AddressKind.RESERVED),
        ("203.0.113.0/24", AddressKind.RESERVED),
    )
)
_V6_TABLE: tuple[tuple[IPv6Network, AddressKind], ...] = tuple(
    (IPv6Network(cidr), kind)
    for cidr, kind in (
        ("::/128", AddressKind.UNSPECIFIED),
        ("::1/128", AddressKind.LOOPBACK),
        ("64:ff9b:1::/48", AddressKind.PRIVATE),
        ("fc00::/7", AddressKind.PRIVATE),
        ("fec0::/10", AddressKind.PRIVATE),
        ("fe80::/10", AddressKind.LINK_LOCAL),
        ("ff00::/8", AddressKind.MULTICAST),
        ("2001::/32", AddressKind.RESERVED),  # Teredo: the real peer is hidden in the address
        ("2001:db8::/32", AddressKind.RESERVED),
        ("100::/64", AddressKind.RESERVED),
    )
)
_MAPPED = IPv6Network("::ffff:0:0/96")
_COMPATIBLE = IPv6Network("::/96")
_NAT64 = IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR = IPv6Network("2002::/16")


@dataclass(frozen=True)
class TargetPolicy:
    """What a tenant opened up beyond the public internet."""

    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_settings(cls, allow_private: bool, networks: Iterable[str]) -> TargetPolicy:
        """Unparseable network entries are ignored: they can only ever narrow what is allowed."""
        parsed: list[IPNetwork] = []
        for text in networks:
            try:
                parsed.append(ip_network(text.strip(), strict=False))
            except ValueError:
                continue
        return cls(allow_private, tuple(sorted(set(parsed), key=str)))


@dataclass(frozen=True)
class Refusal:
    """Why a target is not reached; the message is safe to show the workflow's author."""

    reason: str


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it is one of the forms that carry one."""
    if address in _MAPPED or (address in _COMPATIBLE and int(address) > 1):
        return IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIX_TO_FOUR:
        return IPv4Address((int(address) >> 80) & 0xFFFFFFFF)
    return None


def classify(address: IPAddress) -> AddressKind:
    """What kind of target an address is (an IPv6 form carrying an IPv4 address is that address)."""
    if address in METADATA_ADDRESSES:
        return AddressKind.METADATA
    if isinstance(address, IPv6Address):
        if address.scope_id is not None:
            address = IPv6Address(str(address).split("%", 1)[0])
        inner = embedded_ipv4(address)
        if inner is not None:
            return classify(inner)
        table: Sequence[tuple[IPNetwork, AddressKind]] = _V6_TABLE
    else:
        table = _V4_TABLE
    for network, kind in table:
        if address in network:
            return kind
    return AddressKind.PUBLIC if address.is_global else AddressKind.RESERVED


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a host names without a lookup: IPv6 (with or without brackets) or IPv4 in any
    form the C library's ``inet_aton`` accepts (1-4 parts, each decimal, octal or hex)."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        try:
            return IPv6Address(text)
        except ValueError:
            return None
    return _inet_aton(text)


def _inet_aton(text: str) -> IPv4Address | None:
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values: list[int] = []
    for part in parts:
        value = _c_integer(part)
        if value is None:
            return None
        values.append(value)
    *leading, last = values
    if any(v > 0xFF for v in leading) or last >= 1 << (8 * (5 - len(values))):
        return None
    number = last
    for index, value in enumerate(leading):
        number |= value << (8 * (3 - index))
    return IPv4Address(number)


def _c_integer(part: str) -> int | None:
    if part[:2].lower() == "0x":
        digits, base = part[2:], 16
        allowed = "0123456789abcdefABCDEF"
    elif len(part) > 1 and part.startswith("0"):
        digits, base = part[1:], 8
        allowed = "01234567"
    else:
        digits, base = part, 10
        allowed = "0123456789"
    if not digits or any(c not in allowed for c in digits):
        return None
    value = int(digits, base)
    return value if value <= 0xFFFFFFFF else None


def normalise_host(host: str) -> str:
    return host.strip().rstrip(".").lower()


def refuse_name(host: str) -> Refusal | None:
    """Names refused before any lookup: the cloud metadata services'."""
    name = normalise_host(host)
    if name in METADATA_NAMES:
        return Refusal(f"{name} is a cloud metadata service, which nodes never reach")
    return None


def refuse_address(address: IPAddress, policy: TargetPolicy) -> Refusal | None:
    kind = classify(address)
    if kind is AddressKind.PUBLIC:
        return None
    if kind in NEVER_ALLOWED:
        return Refusal(f"{address} is a {kind.value} address, which nodes never reach")
    if policy.allow_private and kind in PRIVATE_KINDS:
        return None
    if _listed(address, policy.allowed_networks):
        return None
    return Refusal(f"{address} is a {kind.value} address; the tenant's network policy does not allow it")


def _listed(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    candidates: list[IPAddress] = [address]
    if isinstance(address, IPv6Address) and (inner := embedded_ipv4(address)) is not None:
        candidates.append(inner)
    return any(c.version == n.version and c in n for c in candidates for n in networks)


def refuse_addresses(host: str, addresses: Sequence[IPAddress], policy: TargetPolicy) -> Refusal | None:
    """A name is refused if any address it resolves to is, so a mixed answer cannot slip one through."""
    if not addresses:
        return Refusal(f"{normalise_host(host)} does not resolve to any address")
    for address in addresses:
        refusal = refuse_address(address, policy)
        if refusal is not None:
            return (
                refusal
                if parse_ip_literal(host) is not None
                else Refusal(f"{normalise_host(host)}: {refusal.reason}")
            )
    return None


def refuse_url(url: str, policy: TargetPolicy) -> Refusal | None:
    """What can be decided from the URL alone: scheme, metadata names and literal addresses.
    Names are judged again, by the addresses they resolve to, when the connection is made."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return Refusal("the URL cannot be parsed")
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        shown = f"{scheme}://" if scheme else "a URL without a scheme"
        return Refusal(f"{shown} is not allowed; only http and https are")
    try:
        host = parts.hostname
    except ValueError:
        return Refusal("the URL's host cannot be parsed")
    if not host:
        return Refusal("the URL has no host")
    if (refusal := refuse_name(host)) is not None:
        return refusal
    literal = parse_ip_literal(host)
    if literal is not None:
        return refuse_address(literal, policy)
    return None
