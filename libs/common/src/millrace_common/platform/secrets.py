"""Tenant secrets (credentials, AI keys) encrypted at rest; decrypted only in memory, where used."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr


class SecretsUnavailable(RuntimeError):
    """No encryption key is configured, or a stored secret cannot be decrypted with it."""


class SecretBox:
    def __init__(self, key: SecretStr | None) -> None:
        if key is None:
            raise SecretsUnavailable("MILLRACE_ENCRYPTION_KEY is not set; secrets cannot be stored or read")
        try:
            self._fernet = Fernet(key.get_secret_value().encode())
        except ValueError as error:
            raise SecretsUnavailable(
                "MILLRACE_ENCRYPTION_KEY is not a valid key (urlsafe base64 of 32 bytes)"
            ) from error

    def seal(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def open(self, ciphertext: bytes) -> str:
        try:
            return self._fernet.decrypt(ciphertext).decode()
        except InvalidToken as error:
            raise SecretsUnavailable("a stored secret does not decrypt with the configured key") from error


def new_key() -> str:
    return Fernet.generate_key().decode()
