"""Hand-written helpers that the generated message modules use for two schema keywords.

msgspec has no exact counterpart for these two, so the generator points at this module:

* ``format: uri`` (1.6 ``GetDiagnostics.location`` and ``UpdateFirmware.location``): a string
  matching :data:`URI_PATTERN`, a regular expression written from the ABNF of RFC 3986
  (§3 ``URI``, with §3.1 to §3.5 and Appendix A). ``msgspec.Meta(pattern=...)`` searches
  (unanchored), so the pattern anchors itself with ``\\A`` and ``\\Z`` (``$`` would also
  match before a trailing newline).
* ``multipleOf: 0.1`` (1.6 charging schedules): msgspec's float ``multiple_of`` rejects
  values such as 1.0 and 0.3 (binary floating point), so the Structs that carry it call
  :func:`check_multiple_of` from ``__post_init__``; msgspec turns the ``ValueError`` into a
  ``msgspec.ValidationError`` with the path of the object.

Where ``URI_PATTERN`` and ``rfc3986_validator`` (jsonschema's ``uri`` checker) disagree, the
RFC wins; the two known cases are tested in ``tests/unit/test_messages_formats.py``:

* a trailing newline (``"http://x/\\n"``): not a URI; the validator's ``$`` lets it through.
* ``IPvFuture`` with an upper-case ``V`` (``"http://[V1.x]/"``): a URI, since ABNF quoted
  strings are case-insensitive (RFC 5234 §2.3); the validator only accepts ``v``.
"""

from __future__ import annotations

import math
from typing import Final

import msgspec

__all__ = ["URI_PATTERN", "check_multiple_of"]

# RFC 3986 Appendix A, rule by rule. ALPHA, DIGIT and HEXDIG are ASCII only (RFC 5234 B.1);
# character classes spell them out because \d and \w would also match other scripts.
# Repetitions are possessive (*+, ++: Python 3.11) wherever the character that may follow a
# rule can never be part of it, so they change no answer but keep matching linear in time:
# a 1 MiB string that fails at its last character is rejected in about 50 ms.
_HEXDIG = "0-9A-Fa-f"
_UNRESERVED = r"A-Za-z0-9\-._~"  # unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"
_SUB_DELIMS = "!$&'()*+,;="  # sub-delims
_PCT_ENCODED = f"%[{_HEXDIG}]{{2}}"  # pct-encoded = "%" HEXDIG HEXDIG
_PCHAR = f"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT_ENCODED})"

_SCHEME = r"[A-Za-z][A-Za-z0-9+\-.]*+"  # scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_USERINFO = f"(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT_ENCODED})*+"

_DEC_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9][0-9]|[0-9])"
_IPV4ADDRESS = rf"{_DEC_OCTET}(?:\.{_DEC_OCTET}){{3}}"
_H16 = f"[{_HEXDIG}]{{1,4}}"
_LS32 = f"(?:{_H16}:{_H16}|{_IPV4ADDRESS})"


def _h16s(at_most: int) -> str:
    """``[ *N( h16 ":" ) h16 ]``: the optional groups before ``::`` in IPv6address."""
    return f"(?:(?:{_H16}:){{0,{at_most}}}{_H16})?" if at_most else f"(?:{_H16})?"


# IPv6address: the RFC's nine forms, the seven that end in ls32 sharing it (written once).
_IPV6ADDRESS = (
    "(?:(?:"
    + "|".join(
        [
            f"(?:{_H16}:){{6}}",
            f"::(?:{_H16}:){{5}}",
            f"{_h16s(0)}::(?:{_H16}:){{4}}",
            f"{_h16s(1)}::(?:{_H16}:){{3}}",
            f"{_h16s(2)}::(?:{_H16}:){{2}}",
            f"{_h16s(3)}::{_H16}:",
            f"{_h16s(4)}::",
        ]
    )
    + f"){_LS32}|{_h16s(5)}::{_H16}|{_h16s(6)}::)"
)
# IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ); "v" matches "V" too.
_IPVFUTURE = rf"[vV][{_HEXDIG}]+\.[{_UNRESERVED}{_SUB_DELIMS}:]+"
_IP_LITERAL = rf"\[(?:{_IPV6ADDRESS}|{_IPVFUTURE})\]"
_REG_NAME = f"(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT_ENCODED})*+"
_HOST = f"(?:{_IP_LITERAL}|{_IPV4ADDRESS}|{_REG_NAME})"
_AUTHORITY = f"(?:{_USERINFO}@)?{_HOST}(?::[0-9]*+)?"  # port = *DIGIT

_SEGMENT = f"{_PCHAR}*+"
_SEGMENT_NZ = f"{_PCHAR}++"
_PATH_ABEMPTY = f"(?:/{_SEGMENT})*+"
_PATH_ABSOLUTE = f"/(?:{_SEGMENT_NZ}{_PATH_ABEMPTY})?"
_PATH_ROOTLESS = f"{_SEGMENT_NZ}{_PATH_ABEMPTY}"
# hier-part = "//" authority path-abempty / path-absolute / path-rootless / path-empty
_HIER_PART = f"(?://{_AUTHORITY}{_PATH_ABEMPTY}|{_PATH_ABSOLUTE}|{_PATH_ROOTLESS}|)"
_QUERY = f"(?:{_PCHAR}|[/?])*+"  # query = fragment = *( pchar / "/" / "?" )

#: RFC 3986 ``URI = scheme ":" hier-part [ "?" query ] [ "#" fragment ]``, anchored.
URI_PATTERN: Final = rf"\A{_SCHEME}:{_HIER_PART}(?:\?{_QUERY})?(?:#{_QUERY})?\Z"

#: How far ``value / step`` may be from an integer, relative to its size.
_TOLERANCE: Final = 1e-9


def check_multiple_of(value: float | msgspec.UnsetType, step: float, name: str) -> None:
    """Check the schema's ``multipleOf: step`` on ``value`` (a field's value, or UNSET).

    Accepts when ``value / step`` is within 1e-9 (relative) of an integer: the decimal
    multiples the schema means (0.3, 21.4) are not exact multiples in binary floating point.

    Args:
        value: the field's value; ``UNSET`` (an optional field left out) is accepted.
        step: the schema's ``multipleOf``.
        name: the property's wire name, named in the error (msgspec adds the object's path).

    Raises:
        ValueError: worded like msgspec's own constraint errors (``Expected `float` ...``), so
            the protocol layer's error table classifies it; the value is not echoed.
    """
    if value is msgspec.UNSET:
        return
    quotient = value / step
    if not (
        math.isfinite(quotient)
        and abs(quotient - round(quotient)) <= _TOLERANCE * max(1.0, abs(quotient))
    ):
        raise ValueError(f"Expected `float` that's a multiple of {step} (property `{name}`)")
