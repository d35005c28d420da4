"""Payload validation: JSON bytes decoded straight into the typed message, in one pass.

The generated msgspec Structs in :mod:`ocppkit.messages` carry every schema constraint
(required fields, types, enums, lengths, bounds, patterns, date-times, no unknown
properties), so decoding *is* validating: there is no intermediate dict and no second pass.
A :class:`msgspec.ValidationError` is mapped to the CallError code of the connection's
version by :data:`ERROR_CODE_TABLE`, the one place where that mapping lives (it is
published in ``docs/error-codes.md``; a test keeps the two equal).

Lenient mode (per :class:`Validator`, so per connection) accepts a declared set of
:class:`Relaxation` s for sloppy real chargers. A strict decode is always tried first; only
when it fails with an error that a permitted relaxation covers is the payload decoded again
into a relaxed variant of the type, and every relaxation used is counted on the validator
and reported to the caller, never applied silently.

Duplicate keys: msgspec, like most JSON parsers, keeps the last of two equal keys in one
object, while the message log keeps the frame as sent: two readers of one frame would
disagree (a parser differential, reliability.md §4 B7). RFC 8259 §4 leaves duplicate names'
meaning undefined, so a payload that repeats a key within one object is not a usable PDU
and is answered FormatViolation (1.6 FormationViolation). msgspec cannot report duplicates
(msgspec issue #648), so a payload that passed the typed decode is scanned once more by the
standard library's C scanner with a pair hook; a payload with fewer than two ``:`` cannot
hold two keys and skips the scan (Heartbeat, most replies).
"""

from __future__ import annotations

import enum
import json
import re
import types
import typing
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final, Union

import msgspec

from ocppkit.messages import v16, v21, v201
from ocppkit.protocol.errors import ErrorCode, PayloadError
from ocppkit.protocol.versions import OcppVersion, parse_version

__all__ = [
    "ERROR_CODE_TABLE",
    "Relaxation",
    "ValidationRule",
    "Validator",
    "classify",
    "message_types",
    "validate_payload",
]


@dataclass(frozen=True)
class ValidationRule:
    """One row of the error-code table: msgspec's message prefix -> CallError code."""

    prefix: str
    code: ErrorCode
    meaning: str


#: The error-code table. Rows are tried in order; the first prefix that matches wins.
ERROR_CODE_TABLE: Final[tuple[ValidationRule, ...]] = (
    ValidationRule(
        "Object missing required field",
        ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
        "a required property is missing",
    ),
    ValidationRule(
        "Expected `array` of length",
        ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
        "an array has fewer items than minItems or more than maxItems (its cardinality)",
    ),
    ValidationRule(
        "Object contains unknown field",
        ErrorCode.FORMAT_VIOLATION,
        "a property that is not in the schema (additionalProperties: false)",
    ),
    ValidationRule(
        "Expected `str` of length",
        ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
        "a string is shorter than minLength or longer than maxLength",
    ),
    ValidationRule(
        "Expected `str` matching regex",
        ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
        "a string does not match its pattern (or format: uri)",
    ),
    ValidationRule(
        "Invalid enum value",
        ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
        "a value that is not in the enum",
    ),
    ValidationRule(
        "Invalid RFC3339 encoded datetime",
        ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
        "a date-time that is not RFC 3339",
    ),
    ValidationRule(
        "Expected `datetime` with a timezone",
        ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
        "a date-time without a time-zone offset",
    ),
    ValidationRule(
        "Expected `float` that's a multiple of",
        ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
        "a number that is not a multiple of multipleOf",
    ),
    ValidationRule(
        "Integer value out of range",
        ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
        "an integer beyond 64 bits",
    ),
    ValidationRule(
        "Number out of range",
        ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
        "a number beyond the double range (e.g. 1e999)",
    ),
    ValidationRule(
        "Expected `int` >",
        ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
        "an integer below minimum",
    ),
    ValidationRule(
        "Expected `int` <",
        ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
        "an integer above maximum",
    ),
    ValidationRule(
        "Expected `float` >",
        ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
        "a number below minimum",
    ),
    ValidationRule(
        "Expected `float` <",
        ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
        "a number above maximum",
    ),
    ValidationRule(
        "Expected `object`, got",
        ErrorCode.TYPE_CONSTRAINT_VIOLATION,
        "a nested value that should be an object is another JSON type",
    ),
    ValidationRule(
        "Expected `",
        ErrorCode.TYPE_CONSTRAINT_VIOLATION,
        "a value of the wrong JSON type, including null for an optional property",
    ),
)
#: Anything the table does not name: the payload is not a well-formed PDU.
FALLBACK_CODE: Final = ErrorCode.FORMAT_VIOLATION

_ENDS_WITH_INPUT: Final = ("Invalid enum value", "Object contains unknown field")
_REGEX_PREFIX: Final = "Expected `str` matching regex"
_PATH: Final = re.compile(r" - at `(\$[^`]*)`$")
_QUOTED: Final = re.compile(r"\s*(`[^`]*`|'[^']*')$")


def classify(error_message: str) -> tuple[ErrorCode, str, str]:
    """Map msgspec's validation message to (code, description, JSON path).

    The description keeps msgspec's words but drops any value quoted from the input at its
    end (an enum value, an unknown property name): a CALLERROR never echoes the input.
    """
    path = "$"
    match = _PATH.search(error_message)
    if match:
        path = match.group(1)
        error_message = error_message[: match.start()]
    code = FALLBACK_CODE
    for rule in ERROR_CODE_TABLE:
        if error_message.startswith(rule.prefix):
            code = rule.code
            if rule.prefix in _ENDS_WITH_INPUT:
                error_message = _QUOTED.sub("", error_message)
            elif rule.prefix == _REGEX_PREFIX:
                # msgspec quotes the whole pattern (1.4 KB for format: uri): name it instead.
                error_message = "Expected `str` matching the property's pattern"
            break
    return code, f"{error_message} at {path}", path


class Relaxation(enum.Enum):
    """What lenient mode may accept from a sloppy charger (each use is counted)."""

    UNKNOWN_PROPERTIES = "unknown properties ignored"
    LONG_STRINGS = "over-long strings accepted"
    UNKNOWN_ENUM_VALUES = "unknown enum values kept as strings"


_RELAXATION_FOR_PREFIX: Final = {
    "Object contains unknown field": Relaxation.UNKNOWN_PROPERTIES,
    "Expected `str` of length <=": Relaxation.LONG_STRINGS,
    "Invalid enum value": Relaxation.UNKNOWN_ENUM_VALUES,
}

_STRICT: Final[frozenset[Relaxation]] = frozenset()

_REQUESTS: Final[Mapping[OcppVersion, Mapping[str, type[msgspec.Struct]]]] = {
    OcppVersion.V16: v16.REQUESTS,
    OcppVersion.V201: v201.REQUESTS,
    OcppVersion.V21: v21.REQUESTS,
}
_RESPONSES: Final[Mapping[OcppVersion, Mapping[str, type[msgspec.Struct]]]] = {
    OcppVersion.V16: v16.RESPONSES,
    OcppVersion.V201: v201.RESPONSES,
    OcppVersion.V21: v21.RESPONSES,
}


def message_types(
    version: OcppVersion, *, response: bool = False
) -> Mapping[str, type[msgspec.Struct]]:
    """The generated request (or response) Struct of every action of ``version``."""
    return (_RESPONSES if response else _REQUESTS)[version]


class _DecoderCache:
    """The decoders of one OCPP version, built on first use, shared by every Validator.

    msgspec decoders hold no state, so one per type serves every connection; a cache per
    connection cost memory per idle station and a compile per action per connection.
    """

    def __init__(self) -> None:
        self.strict_requests: dict[str, Any] = {}
        self.strict_responses: dict[str, Any] = {}
        self.relaxed_decoders: dict[tuple[str, bool, frozenset[Relaxation]], Any] = {}
        self.relaxed_types: dict[tuple[Any, frozenset[Relaxation]], Any] = {}


_CACHES: dict[OcppVersion, _DecoderCache] = {}


class Validator:
    """Decodes payloads of one OCPP version into typed messages; one per connection.

    Args:
        version: "1.6", "2.0.1" or "2.1".
        lenient: the relaxations this connection may use; empty (strict) by default.

    Attributes:
        relaxation_counts: how often each relaxation was needed, for metrics.
    """

    def __init__(
        self, version: str | OcppVersion, *, lenient: frozenset[Relaxation] = frozenset()
    ) -> None:
        self.version = parse_version(version)
        self.lenient = lenient
        self.relaxation_counts: Counter[Relaxation] = Counter()
        self._requests = message_types(self.version)
        self._responses = message_types(self.version, response=True)
        cache = _CACHES.get(self.version)
        if cache is None:
            cache = _CACHES[self.version] = _DecoderCache()
        self._cache = cache

    def knows(self, action: str) -> bool:
        """True when ``action`` is an action of this version (case-sensitive)."""
        return action in self._requests

    def has_response(self, action: str) -> bool:
        """False for actions that exist only as a 2.1 SEND (NotifyPeriodicEventStream)."""
        return action in self._responses

    def message_type(self, action: str, *, response: bool = False) -> type[msgspec.Struct]:
        """The Struct for ``action``; ``KeyError`` when the version has no such action."""
        return (self._responses if response else self._requests)[action]

    def decode(
        self, action: str, payload: bytes | msgspec.Raw, *, response: bool = False
    ) -> tuple[msgspec.Struct, frozenset[Relaxation]]:
        """Decode and validate; returns the message and the relaxations it needed.

        Raises:
            KeyError: ``action`` is not an action of this version.
            PayloadError: the payload fails the schema (and no permitted relaxation covers
                the failure); ``.code`` is this version's CallError code.
        """
        table = self._cache.strict_responses if response else self._cache.strict_requests
        decoder = table.get(action) or self._strict_decoder(action, response)
        relaxations = _STRICT
        while True:
            try:
                decoded = decoder.decode(payload)
            except msgspec.ValidationError as exc:
                message = str(exc)
                needed = self._relaxation_for(message)
                if needed is None or needed in relaxations:
                    raise self._payload_error(action, message) from None
                relaxations = relaxations | {needed}
                self.relaxation_counts[needed] += 1
                decoder = self._relaxed_decoder(action, response, relaxations)
            except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
                raise PayloadError(
                    ErrorCode.FORMAT_VIOLATION,
                    "payload is not valid UTF-8 JSON",
                    version=self.version,
                    action=action,
                ) from None
            else:
                if has_duplicate_keys(payload):
                    raise PayloadError(
                        ErrorCode.FORMAT_VIOLATION,
                        f"{action}: a JSON object repeats a key",
                        version=self.version,
                        action=action,
                    )
                return decoded, relaxations

    def _strict_decoder(self, action: str, response: bool) -> Any:
        table = self._cache.strict_responses if response else self._cache.strict_requests
        decoder = table[action] = msgspec.json.Decoder(self.message_type(action, response=response))
        return decoder

    def _relaxed_decoder(
        self, action: str, response: bool, relaxations: frozenset[Relaxation]
    ) -> Any:
        key = (action, response, relaxations)
        decoder = self._cache.relaxed_decoders.get(key)
        if decoder is None:
            relaxed = self._relax(self.message_type(action, response=response), relaxations)
            decoder = self._cache.relaxed_decoders[key] = msgspec.json.Decoder(relaxed)
        return decoder

    def _relaxation_for(self, message: str) -> Relaxation | None:
        if not self.lenient:
            return None
        for prefix, relaxation in _RELAXATION_FOR_PREFIX.items():
            if message.startswith(prefix):
                return relaxation if relaxation in self.lenient else None
        return None

    def _payload_error(self, action: str, message: str) -> PayloadError:
        code, description, path = classify(message)
        if path == "$" and code is ErrorCode.TYPE_CONSTRAINT_VIOLATION:
            # The payload itself is not an object: not a PDU at all.
            code, description = ErrorCode.FORMAT_VIOLATION, "payload is not a JSON object"
        return PayloadError(
            code, f"{action}: {description}", version=self.version, action=action, path=path
        )

    def _relax(self, annotation: Any, relaxations: frozenset[Relaxation]) -> Any:
        """A copy of a type with the given constraints removed (cached per version)."""
        key = (annotation, relaxations)
        relaxed_types = self._cache.relaxed_types
        if key not in relaxed_types:
            relaxed_types[key] = _relaxed_type(annotation, relaxations, self._relax)
        return relaxed_types[key]


def _relaxed_type(annotation: Any, relaxations: frozenset[Relaxation], relax: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        inner, *metas = typing.get_args(annotation)
        if Relaxation.LONG_STRINGS in relaxations and inner is str:
            metas = [_without_max_length(meta) for meta in metas]
        return (
            Annotated[(relax(inner, relaxations), *metas)] if metas else relax(inner, relaxations)
        )
    if origin in (Union, types.UnionType):
        args = tuple(relax(arg, relaxations) for arg in typing.get_args(annotation))
        return Union[args]  # noqa: UP007 - built from a tuple at run time
    if origin is list:
        return list[relax(typing.get_args(annotation)[0], relaxations)]  # type: ignore[misc]
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return str if Relaxation.UNKNOWN_ENUM_VALUES in relaxations else annotation
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return _relaxed_struct(annotation, relaxations, relax)
    return annotation


def _without_max_length(meta: Any) -> Any:
    if not isinstance(meta, msgspec.Meta) or meta.max_length is None:
        return meta
    kept = {
        name: getattr(meta, name)
        for name in ("min_length", "pattern", "ge", "le", "gt", "lt", "tz", "description")
        if getattr(meta, name) is not None
    }
    return msgspec.Meta(**kept)


def _relaxed_struct(
    struct_type: type[msgspec.Struct], relaxations: frozenset[Relaxation], relax: Any
) -> type[msgspec.Struct]:
    """A subclass of ``struct_type`` with relaxed field types: ``isinstance`` still holds."""
    hints = typing.get_type_hints(struct_type, include_extras=True)
    fields: list[Any] = []
    for info in msgspec.structs.fields(struct_type):
        relaxed = relax(hints[info.name], relaxations)
        if info.required:
            fields.append((info.name, relaxed))
        else:
            fields.append(
                (info.name, relaxed, msgspec.field(default=info.default, name=info.encode_name))
            )
    config = struct_type.__struct_config__
    forbid = config.forbid_unknown_fields and Relaxation.UNKNOWN_PROPERTIES not in relaxations
    return msgspec.defstruct(
        struct_type.__name__,
        fields,
        bases=(struct_type,),
        module=struct_type.__module__,
        forbid_unknown_fields=forbid,
        omit_defaults=config.omit_defaults,
        kw_only=True,
    )


class _DuplicateKeyError(ValueError):
    """Raised from inside the standard library's JSON scanner at the first repeated key."""


def _object_without_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _DuplicateKeyError
    return obj


#: parse_int=float: a huge integer (legal in customData) must not trip the scanner's
#: int-digit limit; the value itself is not used.
_pair_scanner: Final = json.JSONDecoder(object_pairs_hook=_object_without_repeats, parse_int=float)


_generic_decoder: Final = msgspec.json.Decoder()
_generic_encoder: Final = msgspec.json.Encoder()


def has_duplicate_keys(payload: bytes | msgspec.Raw) -> bool:
    """True when some JSON object in ``payload`` (valid JSON, already decoded once) repeats a
    key, after escapes are resolved (``"a"`` and ``"\\u0061"`` are the same key)."""
    data = bytes(payload)
    if data.count(b":") < 2:
        return False
    # Fast proof of none, in C: a generic decode keeps one value per key, and the encoder
    # writes each key once, so if re-encoding gives back the very bytes, no key repeated.
    # Compact JSON as stations send it round-trips; anything else (spaces, escapes, other
    # number spellings) falls through to the exact scan below, which costs twice as much.
    try:
        if _generic_encoder.encode(_generic_decoder.decode(data)) == data:
            return False
    except (msgspec.DecodeError, msgspec.EncodeError, OverflowError):
        pass
    try:
        _pair_scanner.decode(data.decode("utf-8"))
    except _DuplicateKeyError:
        return True
    except ValueError:  # cannot happen for a payload msgspec accepted; not this check's job
        return False
    return False


def validate_payload(
    version: str | OcppVersion, action: str, payload: bytes, *, response: bool = False
) -> msgspec.Struct:
    """Validate ``payload`` (JSON bytes) as ``action``'s request (or response) of ``version``.

    Returns the typed message. Public API (design.md, "Contracts").

    Raises:
        PayloadError: the payload fails the schema; ``.code`` is the version's CallError
            code string (``OccurenceConstraintViolation`` on 1.6, ...).
        ValueError: ``version`` is not "1.6", "2.0.1" or "2.1", or ``action`` is not an
            action of that version.
    """
    validator = Validator(version)
    if not validator.knows(action):
        raise ValueError(f"OCPP {validator.version} has no action {action[:60]!r}")
    message, _ = validator.decode(action, payload, response=response)
    return message
