"""Station identity from the connection URL.

A station connects to ``ws[s]://HOST:PORT/<any/prefix>/<stationId>``: the last path
segment, percent-decoded, is its identity (2.0.1 Part 4 §3.1.1; design.md "Contracts").
2.0.1 and 2.1 make it an identifierString of at most 48 characters without ``:`` (it is
also the Basic-auth user name); we apply the same rule to 1.6, where nothing stricter exists.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import unquote

__all__ = ["MAX_IDENTITY_LENGTH", "InvalidIdentityError", "identity_from_path"]

#: 2.0.1 Part 4 §3.1.1: identifierString, max 48 characters.
MAX_IDENTITY_LENGTH: Final = 48
# identifierString (2.0.1 Part 2 §2.1): a-z A-Z 0-9 * - _ = : + | @ . ; ':' is excluded here.
_IDENTIFIER: Final = re.compile(r"[A-Za-z0-9*\-_=+|@.]+")
_ESCAPE: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")


class InvalidIdentityError(ValueError):
    """The URL names no acceptable station identity; refuse before the upgrade."""


def identity_from_path(path: str) -> str:
    """The station identity of a request path such as ``/ocpp/CP%2D001?x=1``.

    Raises:
        InvalidIdentityError: empty, malformed percent-escape, longer than 48 characters, or
            a character outside identifierString (``:``, ``/``, spaces, non-ASCII...).
    """
    path = path.split("?", 1)[0].split("#", 1)[0]
    segment = path.rsplit("/", 1)[-1]
    if _ESCAPE.search(segment):
        raise InvalidIdentityError("malformed percent-escape in the station id")
    try:
        identity = unquote(segment, errors="strict")
    except UnicodeDecodeError:
        raise InvalidIdentityError("station id is not UTF-8") from None
    if not identity:
        raise InvalidIdentityError("the URL ends without a station id")
    if len(identity) > MAX_IDENTITY_LENGTH:
        raise InvalidIdentityError(f"station id longer than {MAX_IDENTITY_LENGTH} characters")
    if not _IDENTIFIER.fullmatch(identity):
        raise InvalidIdentityError("station id has characters outside identifierString")
    return identity
