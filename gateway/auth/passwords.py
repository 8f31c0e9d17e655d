"""The one password hasher: people's passwords and confidential clients' secrets, both argon2.

An unknown username or client id costs the same argon2 work as a known one (``verify_nothing``),
so the time an answer takes does not tell which exist.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

hasher = PasswordHasher()
_DUMMY_HASH = hasher.hash(secrets.token_urlsafe(16))


def hash_secret(secret: str) -> str:
    return hasher.hash(secret)


def verify(secret_hash: str, secret: str) -> bool:
    try:
        return hasher.verify(secret_hash, secret)
    except (VerificationError, InvalidHashError):
        return False


def verify_nothing(secret: str) -> None:
    """The work of a real check, for a name that matches no account."""
    verify(_DUMMY_HASH, secret)


def needs_rehash(secret_hash: str) -> bool:
    return hasher.check_needs_rehash(secret_hash)
