"""Authentication shared by the services people call: passwords (Argon2id, memory-hard), access
tokens (HS256 JWT with issuer, audience and expiry), and API keys (random, shown once, stored as
SHA-256: they carry 256 bits of entropy, so a slow hash adds nothing)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from millrace_common.platform.permissions import Role

ALGORITHM = "HS256"
ISSUER = "millrace"
AUDIENCE = "millrace-api"
API_KEY_PREFIX = "mrk"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: a user (by token) or an API key."""

    tenant_id: str
    subject: UUID
    kind: str
    roles: frozenset[Role]


class InvalidCredentials(Exception):
    """Authentication failed; the message is safe to show."""


class Passwords:
    def __init__(self) -> None:
        self._hasher = PasswordHasher()

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    # A hash or a check costs about 100 ms of CPU (argon2id, 64 MiB): on the event loop it stalled
    # every request of the process for that long, webhook calls included. In a worker thread it does
    # not: argon2's C code runs without the GIL.

    async def hashed(self, password: str) -> str:
        """:meth:`hash`, off the event loop."""
        return await asyncio.to_thread(self.hash, password)

    async def verified(self, password_hash: str, password: str) -> bool:
        """:meth:`verify`, off the event loop."""
        return await asyncio.to_thread(self.verify, password_hash, password)


class Tokens:
    def __init__(self, secret: str, *, issuer: str, audience: str, ttl: timedelta) -> None:
        if len(secret) < 32:
            raise ValueError("the token secret must be at least 32 characters")
        self._secret = secret
        self._issuer = issuer
        self._audience = audience
        self._ttl = ttl

    def issue(self, principal: Principal, now: datetime) -> str:
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": str(principal.subject),
            "tenant": principal.tenant_id,
            "roles": sorted(principal.roles),
            "iat": int(now.timestamp()),
            "exp": int((now + self._ttl).timestamp()),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    @property
    def ttl_seconds(self) -> int:
        return int(self._ttl.total_seconds())

    def verify(self, token: str) -> Principal:
        """Only HS256 with our key is accepted, so ``alg=none`` and algorithm confusion fail here."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
            return Principal(
                tenant_id=str(claims["tenant"]),
                subject=UUID(claims["sub"]),
                kind="user",
                roles=frozenset(Role(r) for r in claims["roles"]),
            )
        except (jwt.PyJWTError, KeyError, ValueError, TypeError) as error:
            raise InvalidCredentials("the access token is not valid") from error


def new_api_key() -> tuple[str, str, str]:
    """A fresh key as ``(whole key, lookup prefix, hash)``; only the hash and prefix are stored."""
    prefix = secrets.token_hex(6)
    key = f"{API_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    return key, prefix, hash_api_key(key)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_prefix(key: str) -> str | None:
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX:
        return None
    return parts[1]


def api_key_matches(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_api_key(key), stored_hash)
