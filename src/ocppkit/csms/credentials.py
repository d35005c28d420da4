"""Station passwords (security profiles 1 and 2): stored salted-hashed, compared in constant time.

OCPP A01.FR.06-09 ask for per-station random passwords of which the CSMS keeps only salted
hashes, never logged. The hash is scrypt from the standard library (memory-hard, no extra
dependency), kept in one self-describing string::

    scrypt$<n>$<r>$<p>$<salt hex>$<hash hex>

so the cost can be raised later without breaking stored hashes. 1.6 passwords are 16-20
bytes, often configured as up to 40 hex digits (1.6 errata 3.10 ``AuthorizationKey``);
2.0.1 ``BasicAuthPassword`` is 16-40 characters. Both fit :data:`PASSWORD_LENGTH`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

__all__ = ["PASSWORD_LENGTH", "PasswordError", "check_password", "hash_password", "verify_password"]

#: Accepted password lengths, in characters (1.6 16-20 bytes or 40 hex; 2.0.1 16-40).
PASSWORD_LENGTH: Final = range(16, 41)

_N: Final = 1 << 12  # ~10 ms a check: storms of reconnecting stations stay affordable
_R: Final = 8
_P: Final = 1
_SALT_BYTES: Final = 16
_HASH_BYTES: Final = 32
#: Compared against when the station is unknown, so that "unknown id" and "wrong password"
#: take the same time (uniform 401, reliability.md A3/A5).
_DUMMY: Final = f"scrypt${_N}${_R}${_P}${'00' * _SALT_BYTES}${'00' * _HASH_BYTES}"


class PasswordError(ValueError):
    """A password the operator chose breaks the length rule (local misuse)."""


def check_password(password: str) -> None:
    """Raise :class:`PasswordError` unless ``password`` is 16-40 printable ASCII characters."""
    if len(password) not in PASSWORD_LENGTH:
        raise PasswordError("password must be 16 to 40 characters (OCPP A00.FR.205, 2.0.1 A01)")
    if not password.isascii() or not password.isprintable():
        raise PasswordError("password must be printable ASCII")


def hash_password(password: str) -> str:
    """Return the salted scrypt hash of ``password`` (checked with :func:`check_password`)."""
    check_password(password)
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(password.encode(), salt, _N, _R, _P)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    """True when ``password`` matches ``stored``; ``None`` (no password) never matches.

    Takes the same time whether or not ``stored`` exists, and compares in constant time.
    """
    try:
        _, n, r, p, salt, digest = (stored or _DUMMY).split("$")
        expected = bytes.fromhex(digest)
        actual = _scrypt(password.encode(), bytes.fromhex(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected) and stored is not None


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, dklen=_HASH_BYTES)
