"""Keys, tokens and pseudonyms."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid

API_KEY_PREFIX = "coh_"


def new_api_key() -> tuple[str, str, str]:
    """A fresh key: (the key shown once, its display prefix, the SHA-256 stored)."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return key, key[: len(API_KEY_PREFIX) + 8], hash_api_key(key)


def hash_api_key(key: str) -> str:
    # Keys carry 256 bits of entropy, so a plain SHA-256 is enough (no slow hash needed).
    return hashlib.sha256(key.encode()).hexdigest()


def tokens_match(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


class RespondentHasher:
    """Keyed hashes of the senders' person ids, with one derived key per organisation.

    The organisation's key is HMAC(service secret, organisation id): hashes cannot be joined across
    organisations, and no key is stored next to the hashes.
    """

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    def organization_key(self, organization_id: uuid.UUID) -> bytes:
        return hmac.new(self._secret, b"respondent:" + organization_id.bytes, "sha256").digest()

    def hash(self, organization_key: bytes, respondent: str) -> bytes:
        return hmac.new(organization_key, respondent.encode(), "sha256").digest()
