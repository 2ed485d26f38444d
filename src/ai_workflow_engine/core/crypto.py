"""Encryption at rest for OAuth tokens: Fernet (AES-128-CBC + HMAC-SHA256) with key rotation."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ai_workflow_engine.core.config import Settings

_UNDECRYPTABLE = "stored token cannot be decrypted with the configured keys"


class DecryptionFailed(Exception):
    """A stored secret no configured key can open (keys rotated away, or tampering)."""


class TokenCipher:
    """The first key encrypts; every key decrypts, so keys can be rotated without downtime."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is required")
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenCipher:
        keys = [key.get_secret_value().encode() for key in settings.security.token_encryption_keys]
        if not keys:
            # development and tests: a key derived from SECRET_KEY (production requires real keys)
            secret = settings.auth.secret_key.get_secret_value().encode()
            derived = HKDF(
                algorithm=hashes.SHA256(), length=32, salt=None, info=b"oauth-token-encryption"
            ).derive(secret)
            keys = [base64.urlsafe_b64encode(derived)]
        return cls(keys)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise DecryptionFailed(
                "stored token cannot be decrypted with the configured keys"
            ) from exc

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt with the first (current) key."""
        try:
            return self._fernet.rotate(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise DecryptionFailed(
                "stored token cannot be decrypted with the configured keys"
            ) from exc
