"""The gateway signs users in with the shared authentication of ``millrace_common.platform.auth``."""

from millrace_common.platform.auth import (
    InvalidCredentials,
    Passwords,
    Principal,
    Tokens,
    api_key_matches,
    api_key_prefix,
    hash_api_key,
    new_api_key,
)

__all__ = [
    "InvalidCredentials",
    "Passwords",
    "Principal",
    "Tokens",
    "api_key_matches",
    "api_key_prefix",
    "hash_api_key",
    "new_api_key",
]
