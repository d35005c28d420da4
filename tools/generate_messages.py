"""Generate the typed OCPP messages (msgspec Structs) from the official OCA JSON schemas.

    python tools/generate_messages.py           # (re)write src/ocppkit/messages/v16, v201, v21
    python tools/generate_messages.py --check   # write nothing; exit 1 naming stale files

The schemas are read from the installed ``ocpp`` package (mobilityhouse), which ships the
OCA's JSON schemas as package data; nothing is copied into this repository. For each version
this writes ``enums.py`` (``enum.StrEnum``), ``datatypes.py`` (nested objects), ``requests.py``
and ``responses.py`` (one Struct per schema file) and ``__init__.py`` (re-exports and the
``REQUESTS`` / ``RESPONSES`` tables).

Decoding a payload into these Structs *is* its validation (``ocppkit.protocol.validation``),
so every constraint of the schemas is carried over; a keyword this generator does not know
stops it (``SUPPORTED_KEYWORDS``) rather than being dropped silently. Two keywords need the
hand-written helpers of ``ocppkit.messages._formats``: ``format: uri`` and float
``multipleOf`` (msgspec's own float ``multiple_of`` rejects 1.0 and 0.3 for 0.1).

Naming. 2.x schemas (and the 1.6 Security extension) name nested types in ``definitions``:
the class drops the trailing ``Type`` (``ChargingStationType`` -> ``ChargingStation``). The
1.6 core schemas define nested types inline: they get the OCPP 1.6 specification's type
names from ``V16_SPEC_NAMES``. One name must mean one structure within a version; when two
schemas give the same name to different structures, the variant used by the most schema
files keeps it and each other one is prefixed with its action (reported on stdout).

The output goes through ``ruff format`` with the project's settings, so it is only stable
for the pinned ruff version; ``--check`` compares the formatted text.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.resources
import json
import keyword
import math
import re
import subprocess
import sys
import textwrap
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeAlias

import msgspec

REPO = Path(__file__).resolve().parents[1]
MESSAGES_DIR = REPO / "src" / "ocppkit" / "messages"
LINE_LENGTH = 100  # pyproject's [tool.ruff] line-length: docstrings are wrapped to it

Schema: TypeAlias = dict[str, Any]
Direction: TypeAlias = Literal["Request", "Response"]


@dataclass(frozen=True)
class Version:
    """One OCPP version: its folder in the ``ocpp`` package and in ``ocppkit.messages``."""

    package: str
    label: str


VERSIONS = (Version("v16", "1.6"), Version("v201", "2.0.1"), Version("v21", "2.1"))

#: Every keyword the schemas may use. Anything else is an error: it could be a constraint.
# fmt: off
SUPPORTED_KEYWORDS = frozenset(
    {
        # structure
        "type", "properties", "required", "additionalProperties", "items", "additionalItems",
        "definitions", "$ref", "enum",
        # constraints
        "maxLength", "minLength", "minItems", "maxItems", "minimum", "maximum",
        "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "pattern", "format",
        # annotations (no effect on validation)
        "$schema", "$id", "title", "description", "comment", "$comment", "javaType", "default",
    }
)
# fmt: on
#: Keywords that may stand beside ``$ref`` (draft-04/06 ignore all siblings of ``$ref``).
ANNOTATION_KEYWORDS = frozenset(
    {"$schema", "$id", "title", "description", "comment", "$comment", "javaType", "default"}
)

#: OCPP 1.6 core schemas define nested objects and enums inline, without a name. These are
#: the names the 1.6 specification gives them (its section 7, "Types"), keyed by
#: "<OwnerClass>.<property>" or, when one name fits wherever the property appears, by
#: "<property>". The owner is the generated class holding the property (before any
#: disambiguation). Array items take the name of the array property.
V16_SPEC_NAMES = {
    # objects
    "idTagInfo": "IdTagInfo",
    "meterValue": "MeterValue",
    "transactionData": "MeterValue",
    "sampledValue": "SampledValue",
    "chargingProfile": "ChargingProfile",
    "csChargingProfiles": "ChargingProfile",
    "chargingSchedule": "ChargingSchedule",
    "chargingSchedulePeriod": "ChargingSchedulePeriod",
    "configurationKey": "KeyValue",
    "localAuthorizationList": "AuthorizationData",
    # enums of nested objects
    "IdTagInfo.status": "AuthorizationStatus",
    "SampledValue.context": "ReadingContext",
    "SampledValue.format": "ValueFormat",
    "SampledValue.measurand": "Measurand",
    "SampledValue.phase": "Phase",
    "SampledValue.location": "Location",
    "SampledValue.unit": "UnitOfMeasure",
    "chargingProfilePurpose": "ChargingProfilePurposeType",
    "chargingProfileKind": "ChargingProfileKindType",
    "recurrencyKind": "RecurrencyKindType",
    "chargingRateUnit": "ChargingRateUnitType",
    # enums of requests
    "ChangeAvailabilityRequest.type": "AvailabilityType",
    "DiagnosticsStatusNotificationRequest.status": "DiagnosticsStatus",
    "FirmwareStatusNotificationRequest.status": "FirmwareStatus",
    "ResetRequest.type": "ResetType",
    "SendLocalListRequest.updateType": "UpdateType",
    "StatusNotificationRequest.errorCode": "ChargePointErrorCode",
    "StatusNotificationRequest.status": "ChargePointStatus",
    "StopTransactionRequest.reason": "Reason",
    "TriggerMessageRequest.requestedMessage": "MessageTrigger",
    # enums of responses
    "BootNotificationResponse.status": "RegistrationStatus",
    "CancelReservationResponse.status": "CancelReservationStatus",
    "ChangeAvailabilityResponse.status": "AvailabilityStatus",
    "ChangeConfigurationResponse.status": "ConfigurationStatus",
    "ClearCacheResponse.status": "ClearCacheStatus",
    "ClearChargingProfileResponse.status": "ClearChargingProfileStatus",
    "DataTransferResponse.status": "DataTransferStatus",
    "GetCompositeScheduleResponse.status": "GetCompositeScheduleStatus",
    "RemoteStartTransactionResponse.status": "RemoteStartStopStatus",
    "RemoteStopTransactionResponse.status": "RemoteStartStopStatus",
    "ReserveNowResponse.status": "ReservationStatus",
    "ResetResponse.status": "ResetStatus",
    "SendLocalListResponse.status": "UpdateStatus",
    "SetChargingProfileResponse.status": "ChargingProfileStatus",
    "TriggerMessageResponse.status": "TriggerMessageStatus",
    "UnlockConnectorResponse.status": "UnlockStatus",
}

#: Names the generated modules bind besides the classes; no class may take one of them.
# fmt: off
RESERVED_NAMES = frozenset(
    {
        "ACTIONS_WITHOUT_RESPONSE", "REQUESTS", "RESPONSES", "Annotated", "Any", "Final",
        "Mapping", "OcppStruct", "URI_PATTERN", "check_multiple_of", "datetime", "enum",
        "msgspec", "types",
    }
)
# fmt: on


class SchemaError(Exception):
    """The schemas use something this generator does not translate (yet)."""


# --------------------------------------------------------------------------- schema files


@dataclass(frozen=True)
class SchemaFile:
    """One schema file: the request or the response of one action."""

    name: str
    action: str
    direction: Direction
    schema: Schema = field(compare=False, repr=False)

    @property
    def class_name(self) -> str:
        return self.action + self.direction

    @property
    def draft4(self) -> bool:
        """Draft-04 spells exclusive bounds as booleans beside minimum/maximum."""
        return "draft-04" in str(self.schema.get("$schema", ""))


def ocpp_version() -> str:
    """The installed ``ocpp`` package's version: it goes in every header."""
    return importlib.metadata.version("ocpp")


def split_file_name(version: Version, stem: str) -> tuple[str, Direction]:
    """Action and direction from a file name.

    1.6 names requests ``Action.json``, 2.x ``ActionRequest.json``; both name responses
    ``ActionResponse.json``. A 2.x file with neither suffix is a message without a response
    (2.1's SEND messages, e.g. ``NotifyPeriodicEventStream.json``): a request.
    """
    if stem.endswith("Response"):
        return stem.removesuffix("Response"), "Response"
    if version.package != "v16":
        return stem.removesuffix("Request"), "Request"
    return stem, "Request"


def load_schema_files(version: Version) -> list[SchemaFile]:
    """Every schema of ``version``, sorted by file name (the order settles naming ties)."""
    folder = importlib.resources.files("ocpp").joinpath(version.package, "schemas")
    files = []
    for entry in sorted(folder.iterdir(), key=lambda entry: entry.name):
        if entry.name.endswith(".json"):
            action, direction = split_file_name(version, entry.name.removesuffix(".json"))
            schema = json.loads(entry.read_text(encoding="utf-8"))
            files.append(SchemaFile(entry.name, action, direction, schema))
    if not files:
        raise SchemaError(f"no schemas in {folder}")
    return files


# --------------------------------------------------------------------------- type model


@dataclass(frozen=True)
class Builtin:
    """A JSON scalar as a Python type, with its ``msgspec.Meta`` keywords (name, source)."""

    python: str
    meta: tuple[tuple[str, str], ...] = ()
    imports: tuple[str, ...] = ()


@dataclass(frozen=True)
class ArrayOf:
    """A JSON array: ``list[item]``, with minItems/maxItems as ``msgspec.Meta``."""

    item: TypeExpr
    meta: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class EnumKey:
    """An enumeration; two are the same type when name and values are equal."""

    candidate: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class FieldSpec:
    """One property of an object."""

    wire_name: str
    python_name: str
    type: TypeExpr
    required: bool
    multiple_of: float | None  # float multipleOf, checked in __post_init__


@dataclass(frozen=True)
class StructKey:
    """An object; two are the same type when name and (recursively) structure are equal."""

    candidate: str
    forbid_unknown_fields: bool
    fields: tuple[FieldSpec, ...]


TypeExpr: TypeAlias = Builtin | ArrayOf | EnumKey | StructKey
NamedKey: TypeAlias = EnumKey | StructKey


@dataclass(frozen=True)
class Occurrence:
    """Where a type was found; the first occurrence is quoted in the docstring."""

    file: SchemaFile
    pointer: str
    description: str | None


@dataclass
class VersionModel:
    """Everything one version's modules are rendered from."""

    version: Version
    files: list[SchemaFile]
    occurrences: dict[NamedKey, list[Occurrence]]
    messages: dict[str, StructKey]  # schema file name -> its message Struct
    names: dict[NamedKey, str] = field(default_factory=dict)
    kept_by: dict[NamedKey, str] = field(default_factory=dict)  # renamed -> file keeping name
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- names


def words(text: str) -> list[str]:
    """Split a camelCase / PascalCase / dotted / dashed identifier into words.

    A word starts at each upper-case letter after a lower-case one (``evse|Id``), and at the
    last capital of an acronym or a digit run that begins a capitalised word
    (``URL|Value``, ``15118|Schema``); digits stay with what precedes them (``V2X``, ``1P``).
    """
    result = []
    for token in re.split(r"[^A-Za-z0-9]+", text):
        if token:
            result += re.split(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z0-9])(?=[A-Z][a-z])", token)
    return result


@cache
def camel_wire_name(python_name: str) -> str:
    """What ``rename="camel"`` makes of a field name, asked of msgspec itself."""
    probe = msgspec.defstruct("Probe", [(python_name, int)], rename="camel")
    return probe.__struct_encode_fields__[0]


def python_field_name(wire_name: str) -> str:
    """snake_case of a property name (a trailing ``_`` if that is a keyword)."""
    name = "_".join(words(wire_name)).lower()
    if keyword.iskeyword(name):
        name += "_"
    if not name.isidentifier() or name in RESERVED_NAMES or name.startswith("_"):
        raise SchemaError(f"property {wire_name!r} gives no usable Python name ({name!r})")
    return name


def enum_member_name(value: str) -> str:
    """UPPER_SNAKE of an enum value: ``L1-N`` -> ``L1_N``, ``kWh`` -> ``K_WH``."""
    name = "_".join(words(value)).upper()
    if not name.isidentifier() or name[0].isdigit():
        raise SchemaError(f"enum value {value!r} gives no Python name ({name!r})")
    return name


def strip_type_suffix(definition: str) -> str:
    """``ChargingStationType`` -> ``ChargingStation``: the class name of a definition."""
    return definition.removesuffix("Type") or definition


def pascal(text: str) -> str:
    return text[:1].upper() + text[1:]


# --------------------------------------------------------------------------- schema walk


class Collector:
    """Walks one version's schemas into type keys, remembering where each type occurs."""

    def __init__(self, version: Version) -> None:
        self.version = version
        self.occurrences: dict[NamedKey, list[Occurrence]] = {}
        self.notes: list[str] = []

    def message(self, file: SchemaFile) -> StructKey:
        """The Struct of one schema file (its root object)."""
        check_keywords(file.schema, file, "#")
        if file.schema.get("type") != "object":
            raise SchemaError(f"{file.name}: the root is not an object")
        key = self.object_type(file.schema, file.class_name, file, "#")
        self.record(key, file, "#", file.schema.get("description"))
        return key

    def named_type(
        self, schema: Schema, candidate: str, file: SchemaFile, pointer: str
    ) -> NamedKey:
        """An enum or object that becomes a class of its own; records the occurrence."""
        check_keywords(schema, file, pointer)
        key: NamedKey
        if "enum" in schema:
            values = schema["enum"]
            if schema.get("type") != "string" or not all(isinstance(v, str) for v in values):
                raise SchemaError(f"{file.name} {pointer}: only string enums are supported")
            key = EnumKey(candidate, tuple(values))
        elif schema.get("type") == "object":
            key = self.object_type(schema, candidate, file, pointer)
        else:
            raise SchemaError(f"{file.name} {pointer}: a named type that is not enum or object")
        self.record(key, file, pointer, schema.get("description"))
        return key

    def record(self, key: NamedKey, file: SchemaFile, pointer: str, description: Any) -> None:
        """Remember where ``key`` occurs (once per place: a definition may be used twice)."""
        seen = self.occurrences.setdefault(key, [])
        if all((o.file.name, o.pointer) != (file.name, pointer) for o in seen):
            seen.append(Occurrence(file, pointer, description))

    def object_type(
        self, schema: Schema, candidate: str, file: SchemaFile, pointer: str
    ) -> StructKey:
        """An object's fields, in the schema's property order."""
        required = set(schema.get("required", []))
        fields = []
        for wire_name, sub in schema.get("properties", {}).items():
            sub_pointer = f"{pointer}/properties/{wire_name}"
            fields.append(
                FieldSpec(
                    wire_name=wire_name,
                    python_name=python_field_name(wire_name),
                    type=self.property_type(sub, candidate, wire_name, file, sub_pointer),
                    required=wire_name in required,
                    multiple_of=float_multiple_of(sub, file, sub_pointer),
                )
            )
        python_names = [f.python_name for f in fields]
        if len(set(python_names)) != len(python_names):
            raise SchemaError(f"{file.name} {pointer}: two properties share a snake_case name")
        if required - {f.wire_name for f in fields}:
            raise SchemaError(f"{file.name} {pointer}: required names an undefined property")
        return StructKey(candidate, forbids_unknown_fields(schema, file, pointer), tuple(fields))

    def property_type(
        self, schema: Schema, owner: str, prop: str, file: SchemaFile, pointer: str
    ) -> TypeExpr:
        """The Python type of one property (or of an array's items)."""
        check_keywords(schema, file, pointer)
        if "$ref" in schema:
            definition, target = resolve_ref(schema, file, pointer)
            return self.named_type(
                target, strip_type_suffix(definition), file, f"#/definitions/{definition}"
            )
        if "enum" in schema or schema.get("type") == "object":
            return self.named_type(schema, self.inline_name(owner, prop), file, pointer)
        if schema.get("type") == "array":
            items = schema.get("items")
            if not isinstance(items, dict):
                raise SchemaError(f"{file.name} {pointer}: tuple-style items are not supported")
            if float_multiple_of(items, file, pointer) is not None:
                raise SchemaError(f"{file.name} {pointer}: multipleOf on array items")
            item = self.property_type(items, owner, prop, file, f"{pointer}/items")
            return ArrayOf(item, length_meta(schema, "minItems", "maxItems"))
        return scalar_type(schema, file, pointer)

    def inline_name(self, owner: str, prop: str) -> str:
        """Name of an inline enum/object: the 1.6 spec's name, else ``<Owner><Prop>``."""
        if self.version.package == "v16":
            name = V16_SPEC_NAMES.get(f"{owner}.{prop}") or V16_SPEC_NAMES.get(prop)
            if name:
                return name
        name = owner.removesuffix("Request").removesuffix("Response") + pascal(prop)
        note = f"no specification name for {owner}.{prop}: named {name}"
        if note not in self.notes:
            self.notes.append(note)
        return name


def check_keywords(schema: Schema, file: SchemaFile, pointer: str) -> None:
    """Stop on a keyword that could carry a constraint this generator would drop."""
    unknown = set(schema) - SUPPORTED_KEYWORDS
    if unknown:
        raise SchemaError(f"{file.name} {pointer}: unsupported keywords {sorted(unknown)}")
    if "$ref" in schema and set(schema) - ANNOTATION_KEYWORDS - {"$ref"}:
        raise SchemaError(
            f"{file.name} {pointer}: constraints beside $ref are ignored by the draft"
        )


def resolve_ref(schema: Schema, file: SchemaFile, pointer: str) -> tuple[str, Schema]:
    """A ``#/definitions/<name>`` reference, resolved in its own file (any ``$id`` aside)."""
    match = re.fullmatch(r"#/definitions/([^/]+)", schema["$ref"])
    definitions = file.schema.get("definitions", {})
    if match is None or match.group(1) not in definitions:
        raise SchemaError(f"{file.name} {pointer}: unresolvable $ref {schema['$ref']!r}")
    return match.group(1), definitions[match.group(1)]


def forbids_unknown_fields(schema: Schema, file: SchemaFile, pointer: str) -> bool:
    """``additionalProperties: false`` forbids unknown properties; absent (or true) allows."""
    value = schema.get("additionalProperties", True)
    if not isinstance(value, bool):
        raise SchemaError(f"{file.name} {pointer}: additionalProperties with a schema")
    return not value


def float_multiple_of(schema: Schema, file: SchemaFile, pointer: str) -> float | None:
    """A ``number``'s ``multipleOf``: checked by ``check_multiple_of``, not by msgspec."""
    if "multipleOf" not in schema or schema.get("type") != "number":
        return None
    step = schema["multipleOf"]
    if not isinstance(step, int | float) or step <= 0:
        raise SchemaError(f"{file.name} {pointer}: multipleOf must be a positive number")
    return float(step)


def length_meta(schema: Schema, low: str, high: str) -> tuple[tuple[str, str], ...]:
    """min/max length of a string or array, as ``msgspec.Meta`` keywords."""
    meta = []
    if low in schema:
        meta.append(("min_length", str(int(schema[low]))))
    if high in schema:
        meta.append(("max_length", str(int(schema[high]))))
    return tuple(meta)


def bounds_meta(schema: Schema, integer: bool, draft4: bool) -> tuple[tuple[str, str], ...]:
    """minimum/maximum (and exclusive bounds, in either draft's spelling) as ge/le/gt/lt.

    An integer's bounds are rounded inwards to integers (msgspec wants int bounds on int);
    the 2.x schemas write them as floats (``"minimum": 0.0``).
    """
    meta: list[tuple[str, str]] = []
    for plain, exclusive, inclusive_kw, exclusive_kw, inward in (
        ("minimum", "exclusiveMinimum", "ge", "gt", math.ceil),
        ("maximum", "exclusiveMaximum", "le", "lt", math.floor),
    ):
        bound, is_exclusive = schema.get(plain), False
        if draft4:
            is_exclusive = schema.get(exclusive) is True
        elif exclusive in schema:
            if bound is not None:
                raise SchemaError(f"both {plain} and {exclusive}")
            bound, is_exclusive = schema[exclusive], True
        if bound is None:
            continue
        if not integer:
            meta.append((exclusive_kw if is_exclusive else inclusive_kw, repr(float(bound))))
        elif is_exclusive and bound == int(bound):
            meta.append((exclusive_kw, str(int(bound))))
        else:  # n >= 0.5 is n >= 1; n > 0.5 is also n >= 1
            meta.append((inclusive_kw, str(inward(bound))))
    return tuple(meta)


def scalar_type(schema: Schema, file: SchemaFile, pointer: str) -> Builtin:
    """string, integer, number, boolean, or (no ``type``) any JSON value."""
    kind = schema.get("type")
    where = f"{file.name} {pointer}"
    if kind is None:  # e.g. 2.x DataTransfer.data: any JSON value, null included
        return Builtin("Any", imports=("Any",))
    if kind == "string":
        fmt = schema.get("format")
        meta = length_meta(schema, "minLength", "maxLength")
        if fmt == "date-time":
            if meta or "pattern" in schema:
                raise SchemaError(f"{where}: a date-time with length or pattern")
            return Builtin("datetime.datetime", (("tz", "True"),), ("datetime",))
        if fmt == "uri":
            if "pattern" in schema:
                raise SchemaError(f"{where}: a uri with a pattern")
            return Builtin("str", (*meta, ("pattern", "URI_PATTERN")), ("URI_PATTERN",))
        if fmt is not None:
            raise SchemaError(f"{where}: unsupported format {fmt!r}")
        if "pattern" in schema:
            meta = (*meta, ("pattern", json.dumps(schema["pattern"])))
        return Builtin("str", meta)
    if kind == "integer":
        meta = bounds_meta(schema, integer=True, draft4=file.draft4)
        if "multipleOf" in schema:
            if not isinstance(schema["multipleOf"], int):
                raise SchemaError(f"{where}: an integer's multipleOf that is not an integer")
            meta = (*meta, ("multiple_of", str(schema["multipleOf"])))
        return Builtin("int", meta)
    if kind == "number":
        return Builtin("float", bounds_meta(schema, integer=False, draft4=file.draft4))
    if kind == "boolean":
        return Builtin("bool")
    raise SchemaError(f"{where}: unsupported type {kind!r}")


def collect(version: Version) -> VersionModel:
    """Walk every schema file of ``version`` and give every type its final name."""
    files = load_schema_files(version)
    collector = Collector(version)
    messages = {file.name: collector.message(file) for file in files}
    model = VersionModel(version, files, collector.occurrences, messages, notes=collector.notes)
    assign_names(model)
    return model


def assign_names(model: VersionModel) -> None:
    """Final class names; one name per structure (same name + same structure = one class).

    When schemas give one name to different structures, the variant found in the most
    files (then: in the first file) keeps the name; each other variant is prefixed with the
    action of the first file it occurs in (``StopTransactionMeterValue``).
    """
    by_candidate: dict[str, list[NamedKey]] = defaultdict(list)
    for key in model.occurrences:
        by_candidate[key.candidate].append(key)
    for candidate, keys in by_candidate.items():
        ranked = sorted(keys, key=lambda key: variant_rank(model, key))
        model.names[ranked[0]] = candidate
        for key in ranked[1:]:
            first = model.occurrences[key][0]
            name = first.file.action + candidate
            model.names[key] = name
            model.kept_by[key] = model.occurrences[ranked[0]][0].file.name
            model.notes.append(
                f"{candidate}: {first.file.name} {first.pointer} differs from the one in "
                f"{model.kept_by[key]}: named {name}"
            )
    differing = sorted(
        model.names[k]
        for k in model.names
        if shared_description(model, k) is None and any(o.description for o in model.occurrences[k])
    )
    if differing:
        model.notes.append(
            "descriptions differ between schema files (context-specific), so the docstring "
            f"leaves them out: {', '.join(differing)}"
        )
    taken = list(model.names.values())
    clashes = {n for n in taken if taken.count(n) > 1} | (set(taken) & RESERVED_NAMES)
    if clashes:
        raise SchemaError(f"{model.version.label}: class names clash: {sorted(clashes)}")


def shared_description(model: VersionModel, key: NamedKey) -> str | None:
    """The schemas' description of a type when every occurrence agrees on it, else None.

    2.x enum definitions describe the property that uses them, so the same enum can carry a
    different description in each file; quoting one of them would mislead.
    """
    descriptions = {o.description for o in model.occurrences[key]}
    return descriptions.pop() if len(descriptions) == 1 else None


def variant_rank(model: VersionModel, key: NamedKey) -> tuple[int, str]:
    occurrences = model.occurrences[key]
    return -len({o.file.name for o in occurrences}), occurrences[0].file.name


# --------------------------------------------------------------------------- rendering


@cache
def header() -> str:
    """The comment every generated file starts with (split to fit the line length)."""
    return (
        "# GENERATED by tools/generate_messages.py from the OCA JSON schemas shipped in "
        f"ocpp=={ocpp_version()};\n"
        "# do not edit. Regenerate: python tools/generate_messages.py\n"
    )


def docstring(paragraphs: Sequence[str], indent: str) -> str:
    """A docstring; schema text is kept word for word, only re-wrapped to the line length."""
    width = LINE_LENGTH - len(indent) - 6  # room for the quotes (ruff joins a one-line docstring)
    lines: list[str] = []
    for paragraph in paragraphs:
        if lines:
            lines.append("")
        for raw in paragraph.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
            text = raw.replace("\t", " ").strip()
            if text:
                lines += textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)
    body = "\n".join(lines).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if "\n" not in body and not body.endswith('"'):
        return f'{indent}"""{body}"""\n'
    body = textwrap.indent(body, indent)
    return f'{indent}"""{body.removeprefix(indent)}\n{indent}"""\n'


def where_found(model: VersionModel, key: NamedKey) -> str:
    """First docstring line: the schema file and JSON pointer the type comes from."""
    occurrences = model.occurrences[key]
    first = occurrences[0]
    others = len({o.file.name for o in occurrences} - {first.file.name})
    more = f" (and {others} more schema file{'s' * (others > 1)})" if others else ""
    return f"From {first.file.name}, ``{first.pointer}``{more}."


class Imports:
    """The names a module uses, so that it imports exactly those (ruff F401)."""

    def __init__(self, model: VersionModel, module: str) -> None:
        self.module = module
        self.names: set[str] = set()
        self.home: dict[str, str] = {}
        for key, name in model.names.items():
            if isinstance(key, EnumKey):
                self.home[name] = "enums"
            elif key not in model.messages.values():
                self.home[name] = "datatypes"

    def use(self, *names: str) -> None:
        self.names.update(names)

    def render(self) -> str:
        """Import lines in ruff's isort order: stdlib, third party, then relative."""
        stdlib = [f"import {m}" for m in ("datetime", "enum", "types") if m in self.names]
        typing = sorted(self.names & {"Annotated", "Any", "Final"})
        if "Mapping" in self.names:
            stdlib.append("from collections.abc import Mapping")
        if typing:
            stdlib.append(f"from typing import {', '.join(typing)}")
        groups = [stdlib, ["import msgspec"] if "msgspec" in self.names else []]
        local = []
        if "OcppStruct" in self.names:
            local.append("from .._base import OcppStruct")
        formats = sorted(self.names & {"URI_PATTERN", "check_multiple_of"})
        if formats:
            local.append(f"from .._formats import {', '.join(formats)}")
        for module in ("datatypes", "enums"):
            imported = sorted(n for n in self.names if self.home.get(n) == module)
            if imported and module != self.module:
                local.append(f"from .{module} import {', '.join(imported)}")
        groups.append(local)
        return "\n\n".join("\n".join(group) for group in groups if group) + "\n"


def render_type(expr: TypeExpr, model: VersionModel, imports: Imports) -> str:
    """The annotation of a field (without ``| msgspec.UnsetType``)."""
    if isinstance(expr, Builtin):
        imports.use(*expr.imports)
        return annotated(expr.python, expr.meta, imports)
    if isinstance(expr, ArrayOf):
        return annotated(f"list[{render_type(expr.item, model, imports)}]", expr.meta, imports)
    name = model.names[expr]
    imports.use(name)
    return name


def annotated(base: str, meta: tuple[tuple[str, str], ...], imports: Imports) -> str:
    if not meta:
        return base
    imports.use("Annotated", "msgspec")
    keywords = ", ".join(f"{name}={value}" for name, value in meta)
    return f"Annotated[{base}, msgspec.Meta({keywords})]"


def render_field(spec: FieldSpec, model: VersionModel, imports: Imports) -> str:
    """``name: T`` (required) or ``name: T | msgspec.UnsetType = msgspec.UNSET``.

    An explicit wire name is added where ``rename="camel"`` would not give the schema's.
    """
    annotation = render_type(spec.type, model, imports)
    wire_name = json.dumps(spec.wire_name)
    explicit = camel_wire_name(spec.python_name) != spec.wire_name
    if spec.required:
        default = f" = msgspec.field(name={wire_name})" if explicit else ""
    else:
        annotation += " | msgspec.UnsetType"
        default = " = msgspec.UNSET"
        if explicit:
            default = f" = msgspec.field(default=msgspec.UNSET, name={wire_name})"
    if default:
        imports.use("msgspec")
    return f"    {spec.python_name}: {annotation}{default}\n"


def render_post_init(key: StructKey, imports: Imports) -> str:
    """``__post_init__`` checking float ``multipleOf`` (msgspec's check is exact-binary)."""
    checked = [f for f in key.fields if f.multiple_of is not None]
    if not checked:
        return ""
    imports.use("check_multiple_of")
    lines = [
        "",
        "    def __post_init__(self) -> None:",
        '        """Check ``multipleOf``: see ``ocppkit.messages._formats.check_multiple_of``."""',
    ]
    for spec in checked:
        arguments = f"self.{spec.python_name}, {spec.multiple_of!r}, {json.dumps(spec.wire_name)}"
        lines.append(f"        check_multiple_of({arguments})")
    return "\n".join(lines) + "\n"


def struct_paragraphs(model: VersionModel, key: StructKey) -> list[str]:
    """Docstring paragraphs of a Struct: origin, naming or extensibility notes, description."""
    first = model.occurrences[key][0]
    if first.pointer == "#":
        kind = {"Request": "CALL", "Response": "CALLRESULT"}[first.file.direction]
        if first.file.direction == "Request" and not has_response(model, first.file.action):
            kind = "SEND (this message has no response)"
        paragraphs = [f"{first.file.name}: the payload of a {first.file.action} {kind}."]
    else:
        paragraphs = [where_found(model, key)]
    if key in model.kept_by:
        paragraphs.append(renamed_note(model, key))
    if not key.forbid_unknown_fields:
        paragraphs.append(
            "Extensible: the schema has no ``additionalProperties: false``, so unknown (vendor) "
            "properties are accepted when decoding, and dropped."
        )
    description = shared_description(model, key)
    if description:
        paragraphs.append(description)
    return paragraphs


def render_struct(model: VersionModel, key: StructKey, imports: Imports) -> str:
    """One ``class X(OcppStruct, kw_only=True)`` with its fields."""
    imports.use("OcppStruct")
    options = (
        "kw_only=True" if key.forbid_unknown_fields else "kw_only=True, forbid_unknown_fields=False"
    )
    text = f"class {model.names[key]}(OcppStruct, {options}):\n"
    text += docstring(struct_paragraphs(model, key), "    ")
    if key.fields:
        text += "\n" + "".join(render_field(spec, model, imports) for spec in key.fields)
    return text + render_post_init(key, imports)


def render_enum(model: VersionModel, key: EnumKey, imports: Imports) -> str:
    """One ``enum.StrEnum``; the values are the schema's strings, unchanged."""
    imports.use("enum")
    paragraphs = [where_found(model, key)]
    name = model.names[key]
    if key in model.kept_by:
        paragraphs.append(renamed_note(model, key))
    description = shared_description(model, key)
    if description:
        paragraphs.append(description)
    members = [enum_member_name(value) for value in key.values]
    if len(set(members)) != len(members):
        raise SchemaError(f"{name}: two values give the same member name")
    lines = [f"    {m} = {json.dumps(v)}\n" for m, v in zip(members, key.values, strict=True)]
    return f"class {name}(enum.StrEnum):\n" + docstring(paragraphs, "    ") + "\n" + "".join(lines)


def renamed_note(model: VersionModel, key: NamedKey) -> str:
    """Why a class carries its action's name (see ``assign_names``)."""
    return (
        f"Prefixed with its action: ``{key.candidate}`` is the type of the same name in "
        f"{model.kept_by[key]}, whose schema differs from this one."
    )


def has_response(model: VersionModel, action: str) -> bool:
    return any(f.action == action and f.direction == "Response" for f in model.files)


def module_text(doc: str, imports: Imports, blocks: list[str], future: bool) -> str:
    """Header, docstring, imports and the class blocks of one module."""
    parts = [header() + f'"""{doc}"""\n']
    if future:
        parts.append("from __future__ import annotations\n")
    parts.append(imports.render())
    return "\n".join(parts) + "\n\n" + "\n\n".join(blocks)


def render_enums(model: VersionModel) -> str:
    imports = Imports(model, "enums")
    keys = sorted((k for k in model.names if isinstance(k, EnumKey)), key=model.names.__getitem__)
    blocks = [render_enum(model, key, imports) for key in keys]
    doc = f"OCPP {model.version.label} enumerations, one ``enum.StrEnum`` per enum of the schemas."
    return module_text(doc, imports, blocks, future=False)


def render_structs(model: VersionModel, module: str) -> str:
    """``datatypes`` (nested objects), ``requests`` or ``responses`` (one per schema file)."""
    imports = Imports(model, module)
    messages = {model.messages[file.name]: file for file in model.files}
    if module == "datatypes":
        keys = [k for k in model.names if isinstance(k, StructKey) and k not in messages]
        doc = f"OCPP {model.version.label} nested types: the objects inside the payloads."
    else:
        direction = module.removesuffix("s").capitalize()
        keys = [k for k, f in messages.items() if f.direction == direction]
        doc = f"OCPP {model.version.label} {module}: one ``<Action>{direction}`` per schema file."
    blocks = [
        render_struct(model, key, imports) for key in sorted(keys, key=model.names.__getitem__)
    ]
    return module_text(doc, imports, blocks, future=True)


def render_init(model: VersionModel) -> str:
    """Re-exports, the ``REQUESTS`` / ``RESPONSES`` tables and ``ACTIONS_WITHOUT_RESPONSE``."""
    imports = Imports(model, "__init__")
    imports.use("types", "Mapping", "Final", "msgspec")
    by_module: dict[str, list[str]] = defaultdict(list)
    for file in model.files:
        by_module[file.direction.lower() + "s"].append(file.class_name)
    for name, module in imports.home.items():
        by_module[module].append(name)
    requests = {f.action: f.class_name for f in model.files if f.direction == "Request"}
    responses = {f.action: f.class_name for f in model.files if f.direction == "Response"}
    one_way = sorted(set(requests) - set(responses))
    if set(responses) - set(requests):
        raise SchemaError(f"{model.version.label}: responses without requests")
    exports = [n for names in by_module.values() for n in names]
    exports += ["ACTIONS_WITHOUT_RESPONSE", "REQUESTS", "RESPONSES"]
    table_type = "Final[Mapping[str, type[msgspec.Struct]]]"

    def table(entries: dict[str, str]) -> str:
        rows = "".join(f"        {json.dumps(a)}: {entries[a]},\n" for a in sorted(entries))
        return "types.MappingProxyType(\n    {\n" + rows + "    }\n)"

    one_way_set = (
        "frozenset({" + ", ".join(json.dumps(a) for a in one_way) + "})"
        if one_way
        else "frozenset()"
    )
    doc = (
        f"OCPP {model.version.label} payloads as msgspec Structs, from the OCA JSON schemas.\n\n"
        "``REQUESTS`` and ``RESPONSES`` map each action name to its ``<Action>Request`` and\n"
        "``<Action>Response`` Struct (:mod:`.requests`, :mod:`.responses`); nested types are\n"
        "in :mod:`.datatypes`, enumerations in :mod:`.enums`; all are re-exported here.\n"
        + (
            "``ACTIONS_WITHOUT_RESPONSE`` names the actions that have a request but no response\n"
            f"(SEND messages: {', '.join(one_way)}); they are in ``REQUESTS`` only.\n"
            if one_way
            else "``ACTIONS_WITHOUT_RESPONSE`` is empty: every action here has a response.\n"
        )
    )
    lines = [header() + f'"""{doc}"""\n', imports.render()]
    for module in ("datatypes", "enums", "requests", "responses"):
        names = sorted(by_module[module])
        if names:
            lines.append(f"from .{module} import (\n" + "".join(f"    {n},\n" for n in names) + ")")
    lines.append(f"\nREQUESTS: {table_type} = {table(requests)}")
    lines.append(f"RESPONSES: {table_type} = {table(responses)}")
    lines.append(f"ACTIONS_WITHOUT_RESPONSE: Final[frozenset[str]] = {one_way_set}")
    all_rows = "".join(f"    {json.dumps(n)},\n" for n in sorted(exports))  # ruff re-sorts
    lines.append(f"\n__all__ = [\n{all_rows}]")
    return "\n".join(lines) + "\n"


def ruff(arguments: Sequence[str], source: str, path: Path) -> str:
    """Run ruff on ``source`` as if it were ``path`` (so the project's settings apply)."""
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *arguments, "--stdin-filename", str(path), "-"],
        input=source,
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    if result.returncode != 0:
        raise SchemaError(f"ruff {arguments[0]} failed on {path}:\n{result.stderr}")
    return result.stdout


def ruff_format(source: str, path: Path) -> str:
    """Sort imports and ``__all__`` (ruff's I and RUF022 orders), then ``ruff format``.

    Ruff's own orders, with the project's settings, rather than reimplemented here: the
    output is lint- and format-clean by construction.
    """
    sorted_source = ruff(["check", "--fix-only", "--select", "I,RUF022"], source, path)
    return ruff(["format"], sorted_source, path)


def render_version(model: VersionModel) -> dict[Path, str]:
    """The five files of one version, formatted."""
    folder = MESSAGES_DIR / model.version.package
    sources = {
        "__init__.py": render_init(model),
        "datatypes.py": render_structs(model, "datatypes"),
        "enums.py": render_enums(model),
        "requests.py": render_structs(model, "requests"),
        "responses.py": render_structs(model, "responses"),
    }
    return {folder / name: ruff_format(text, folder / name) for name, text in sources.items()}


def summary(model: VersionModel) -> str:
    """Counts and naming notes for one version, printed after writing."""
    actions = {f.action for f in model.files}
    structs = sum(isinstance(k, StructKey) for k in model.names) - len(model.messages)
    enums = sum(isinstance(k, EnumKey) for k in model.names)
    lines = [
        f"OCPP {model.version.label}: {len(model.files)} schema files, {len(actions)} actions, "
        f"{len(model.messages)} message Structs, {structs} nested Structs, {enums} enums"
    ]
    lines += [f"  note: {note}" for note in model.notes]
    return "\n".join(lines)


def stale_files(outputs: dict[Path, str]) -> list[Path]:
    """Generated files whose committed text differs, is missing, or should not exist."""
    stale = [
        path
        for path, text in outputs.items()
        if not path.is_file() or path.read_text(encoding="utf-8") != text
    ]
    for version in VERSIONS:
        folder = MESSAGES_DIR / version.package
        if folder.is_dir():
            stale += [p for p in sorted(folder.glob("*.py")) if p not in outputs]
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    """Generate (or, with ``--check``, verify) every version's modules; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a generated file is stale"
    )
    args = parser.parse_args(argv)
    try:
        models = [collect(version) for version in VERSIONS]
        outputs: dict[Path, str] = {}
        for model in models:
            outputs.update(render_version(model))
    except SchemaError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    stale = stale_files(outputs)
    if args.check:
        for path in stale:
            print(f"stale: {path.relative_to(REPO)}")
        if stale:
            print("run: python tools/generate_messages.py")
        return 1 if stale else 0
    for path in stale:
        if path in outputs:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(outputs[path], encoding="utf-8")
            print(f"wrote {path.relative_to(REPO)}")
        else:
            path.unlink()
            print(f"removed {path.relative_to(REPO)}")
    for model in models:
        print(summary(model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
