"""The generated message Structs (``ocppkit.messages.v16``, ``.v201``, ``.v21``) vs the schemas.

The schemas are read here on their own (from the installed ``ocpp`` package), not through
the generator, and every Struct is inspected with ``msgspec.inspect``: what is checked is
what msgspec will actually enforce when decoding.
"""

from __future__ import annotations

import importlib
import importlib.resources
import json
import subprocess
import sys
import types
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest

from ocppkit.messages import v16, v21, v201
from ocppkit.messages._formats import URI_PATTERN

REPO = Path(__file__).resolve().parents[2]
VERSIONS = {"1.6": "v16", "2.0.1": "v201", "2.1": "v21"}
Schema = dict[str, Any]


@cache
def schema_files(version: str) -> tuple[tuple[str, str, Schema], ...]:
    """(action, "Request" | "Response", schema) for every schema file of a version."""
    folder = importlib.resources.files("ocpp").joinpath(VERSIONS[version], "schemas")
    result = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        stem = entry.name.removesuffix(".json")
        if stem.endswith("Response"):
            action, direction = stem.removesuffix("Response"), "Response"
        else:
            action, direction = stem.removesuffix("Request"), "Request"
        result.append((action, direction, json.loads(entry.read_text(encoding="utf-8"))))
    return tuple(result)


def message_module(version: str) -> Any:
    return importlib.import_module(f"ocppkit.messages.{VERSIONS[version]}")


def all_cases() -> list[Any]:
    return [
        pytest.param(version, action, direction, schema, id=f"{version}-{action}{direction}")
        for version in VERSIONS
        for action, direction, schema in schema_files(version)
    ]


def test_committed_modules_are_what_the_generator_generates() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "generate_messages.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("version", "files", "actions", "without_response"),
    [
        ("1.6", 78, 39, set()),
        ("2.0.1", 128, 64, set()),
        ("2.1", 181, 91, {"NotifyPeriodicEventStream"}),
    ],
)
def test_request_and_response_tables_cover_every_schema_file(
    version: str, files: int, actions: int, without_response: set[str]
) -> None:
    module = message_module(version)
    cases = schema_files(version)
    requests = {action for action, direction, _ in cases if direction == "Request"}
    responses = {action for action, direction, _ in cases if direction == "Response"}
    assert (len(cases), len(requests | responses)) == (files, actions)
    assert set(module.REQUESTS) == requests
    assert set(module.RESPONSES) == responses
    assert module.ACTIONS_WITHOUT_RESPONSE == requests - responses == without_response
    assert isinstance(module.REQUESTS, types.MappingProxyType)
    assert isinstance(module.RESPONSES, types.MappingProxyType)
    for action, direction, _ in cases:
        table = module.REQUESTS if direction == "Request" else module.RESPONSES
        assert table[action] is getattr(module, action + direction)


def resolve(schema: Schema, root: Schema) -> Schema:
    if "$ref" in schema:
        definition: Schema = root["definitions"][schema["$ref"].removeprefix("#/definitions/")]
        return definition
    return schema


def check_type(schema: Schema, info: mi.Type, root: Schema, where: str) -> None:
    """``info`` (what msgspec enforces) is exactly what ``schema`` allows."""
    schema = resolve(schema, root)
    kind = schema.get("type")
    if "enum" in schema:
        assert isinstance(info, mi.EnumType), where
        assert [member.value for member in info.cls] == schema["enum"], where
    elif kind == "object":
        check_object(schema, info, root, where)
    elif kind == "array":
        assert isinstance(info, mi.ListType), where
        assert (info.min_length, info.max_length) == (
            schema.get("minItems"),
            schema.get("maxItems"),
        )
        check_type(schema["items"], info.item_type, root, f"{where}[]")
    elif kind == "string" and schema.get("format") == "date-time":
        assert info == mi.DateTimeType(tz=True), where
    elif kind == "string":
        pattern = URI_PATTERN if schema.get("format") == "uri" else schema.get("pattern")
        expected = mi.StrType(
            min_length=schema.get("minLength"), max_length=schema.get("maxLength"), pattern=pattern
        )
        assert info == expected, where
    elif kind == "integer":
        assert info == mi.IntType(ge=schema.get("minimum"), le=schema.get("maximum")), where
    elif kind == "number":  # a multipleOf is checked by __post_init__ (test below)
        assert info == mi.FloatType(ge=schema.get("minimum"), le=schema.get("maximum")), where
    elif kind == "boolean":
        assert info == mi.BoolType(), where
    else:
        assert kind is None and info == mi.AnyType(), where


def check_object(schema: Schema, info: mi.Type, root: Schema, where: str) -> None:
    """Wire names, required set, unknown-property policy, then every property's type."""
    assert isinstance(info, mi.StructType), where
    fields = {f.encode_name: f for f in info.fields}
    properties = schema.get("properties", {})
    assert set(fields) == set(properties), where
    assert {name for name, f in fields.items() if f.required} == set(schema.get("required", []))
    assert info.forbid_unknown_fields == (schema.get("additionalProperties") is False), where
    defaults = {f.encode_name: f.default for f in msgspec.structs.fields(info.cls)}
    for name, sub in properties.items():
        if not fields[name].required:
            assert defaults[name] is msgspec.UNSET, f"{where}.{name}"
        if "multipleOf" in resolve(sub, root):
            assert "__post_init__" in vars(info.cls), f"{where}.{name}: multipleOf unchecked"
        check_type(sub, fields[name].type, root, f"{where}.{name}")


@pytest.mark.parametrize(("version", "action", "direction", "schema"), all_cases())
def test_struct_has_the_schemas_properties_required_set_types_and_constraints(
    version: str, action: str, direction: str, schema: Schema
) -> None:
    module = message_module(version)
    struct = (module.REQUESTS if direction == "Request" else module.RESPONSES)[action]
    check_object(schema, mi.type_info(struct), schema, "$")


def decode(struct: type[msgspec.Struct], payload: Any) -> msgspec.Struct:
    return msgspec.json.decode(json.dumps(payload).encode(), type=struct)


MINIMAL_PAYLOADS = [
    (v16.BootNotificationRequest, {"chargePointVendor": "ACME", "chargePointModel": "X1"}),
    (v16.AuthorizeResponse, {"idTagInfo": {"status": "Accepted"}}),
    (v16.GetDiagnosticsRequest, {"location": "ftp://diag.example.com/upload"}),
    (v16.MeterValuesRequest, {"connectorId": 1, "meterValue": [
        {"timestamp": "2026-01-01T00:00:00Z", "sampledValue": [{"value": "1", "unit": "Hertz"}]}]}),
    (v16.GetInstalledCertificateIdsRequest, {"certificateType": "CentralSystemRootCertificate"}),
    (v16.LogStatusNotificationResponse, {}),
    (v201.BootNotificationRequest, {"reason": "PowerUp",
                                    "chargingStation": {"model": "X1", "vendorName": "ACME"}}),
    (v201.HeartbeatResponse, {"currentTime": "2026-01-01T00:00:00+01:00"}),
    (v201.OCSPRequestData, {"hashAlgorithm": "SHA256", "issuerNameHash": "a",
                            "issuerKeyHash": "b", "serialNumber": "c", "responderURL": "u"}),
    (v201.DataTransferRequest, {"vendorId": "ACME", "data": {"any": [1, None]}}),
    (v21.HeartbeatRequest, {}),
    (v21.NotifyPeriodicEventStreamRequest, {"id": 1, "pending": 0,
                                            "basetime": "2026-01-01T00:00:00Z",
                                            "data": [{"t": 0.5, "v": "1"}]}),
    (v21.AuthorizeRequest, {"idToken": {"idToken": "TAG1", "type": "ISO14443"}}),
]  # fmt: skip


@pytest.mark.parametrize(("struct", "payload"), MINIMAL_PAYLOADS)
def test_minimal_valid_payload_decodes_and_encodes_back_unchanged(
    struct: type[msgspec.Struct], payload: Any
) -> None:
    message = decode(struct, payload)
    assert json.loads(msgspec.json.encode(message)) == payload


@pytest.mark.parametrize(
    ("struct", "payload", "error"),
    [
        (v16.BootNotificationRequest,
         {"chargePointVendor": "A", "chargePointModel": "B", "iccid": None},
         "Expected `str`, got `null` - at `$.iccid`"),
        (v201.BootNotificationRequest,
         {"reason": "PowerUp", "chargingStation": {"model": "m", "vendorName": "v",
                                                   "serialNumber": None}},
         "Expected `str`, got `null` - at `$.chargingStation.serialNumber`"),
        (v21.HeartbeatRequest, {"customData": None},
         "Expected `object`, got `null` - at `$.customData`"),
    ],
)  # fmt: skip
def test_null_for_an_optional_property_is_rejected(
    struct: type[msgspec.Struct], payload: Any, error: str
) -> None:
    with pytest.raises(msgspec.ValidationError) as info:
        decode(struct, payload)
    assert str(info.value) == error


@pytest.mark.parametrize(
    ("struct", "payload", "path"),
    [
        (v16.HeartbeatRequest, {"x": 1}, ""),
        (v16.AuthorizeResponse, {"idTagInfo": {"status": "Accepted", "x": 1}},
         " - at `$.idTagInfo`"),
        (v201.HeartbeatRequest, {"x": 1}, ""),
        (v21.AuthorizeRequest, {"idToken": {"idToken": "T", "type": "Central", "x": 1}},
         " - at `$.idToken`"),
    ],
)  # fmt: skip
def test_unknown_property_is_rejected(
    struct: type[msgspec.Struct], payload: Any, path: str
) -> None:
    with pytest.raises(msgspec.ValidationError) as info:
        decode(struct, payload)
    assert str(info.value) == f"Object contains unknown field `x`{path}"


@pytest.mark.parametrize("module", [v201, v21])
def test_custom_data_accepts_vendor_properties_and_drops_them(module: Any) -> None:
    message = decode(module.HeartbeatRequest, {"customData": {"vendorId": "ACME", "extra": [1]}})
    assert msgspec.json.decode(msgspec.json.encode(message)) == {"customData": {"vendorId": "ACME"}}
    assert not module.CustomData.__struct_config__.forbid_unknown_fields


def charging_profile(limit: float) -> dict[str, Any]:
    schedule = {
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
    }
    return {"connectorId": 1, "csChargingProfiles": {
        "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute", "chargingSchedule": schedule}}  # fmt: skip


@pytest.mark.parametrize("limit", [0.3, 1.0, 21.4, 32])
def test_float_multiple_of_accepts_decimal_multiples(limit: float) -> None:
    decode(v16.SetChargingProfileRequest, charging_profile(limit))


def test_float_multiple_of_error_names_property_and_object_path() -> None:
    with pytest.raises(msgspec.ValidationError) as info:
        decode(v16.SetChargingProfileRequest, charging_profile(21.45))
    assert str(info.value) == (
        "Expected `float` that's a multiple of 0.1 (property `limit`)"
        " - at `$.csChargingProfiles.chargingSchedule.chargingSchedulePeriod[0]`"
    )


def test_uri_format_is_checked() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"^Expected `str` matching regex"):
        decode(v16.UpdateFirmwareRequest,
               {"location": "not a uri", "retrieveDate": "2026-01-01T00:00:00Z"})  # fmt: skip
