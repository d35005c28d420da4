"""validate_payload and the error-code table: boundary cases per rule, lenient mode.

Anchors: 2.0.1 Part 4 §4.1.7 (message validity), §4.2.3 (CallError codes); 1.6J errata 3.1
(no additional properties), 5.1 and 5.2 (spellings kept); checklist rows D1-D6 of
reliability.md §4.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import msgspec
import pytest

from ocppkit.protocol import (
    ERROR_CODE_TABLE,
    ErrorCode,
    PayloadError,
    Relaxation,
    Validator,
    validate_payload,
)
from ocppkit.protocol.validation import FALLBACK_CODE, classify, has_duplicate_keys

DOCS = Path(__file__).parents[3] / "docs" / "error-codes.md"


def code_of(version: str, action: str, payload: object, *, response: bool = False) -> str:
    with pytest.raises(PayloadError) as info:
        validate_payload(version, action, json.dumps(payload).encode(), response=response)
    return info.value.code


def test_returns_the_typed_message() -> None:
    """validate_payload is public API (design.md Contracts): typed message out."""
    message = validate_payload("1.6", "Authorize", b'{"idTag":"ABC"}')
    assert type(message).__name__ == "AuthorizeRequest"
    assert message.id_tag == "ABC"  # type: ignore[attr-defined]
    response = validate_payload(
        "2.0.1", "Heartbeat", b'{"currentTime":"2026-11-27T10:00:00+01:00"}', response=True
    )
    assert response.current_time == datetime(2026, 11, 27, 9, tzinfo=UTC)  # type: ignore[attr-defined]


def test_bad_version_or_action_is_a_value_error() -> None:
    """Local misuse is a ValueError, not a CallError."""
    with pytest.raises(ValueError, match="unsupported OCPP version"):
        validate_payload("1.5", "Authorize", b"{}")
    with pytest.raises(ValueError, match="has no action"):
        validate_payload("2.0.1", "StartTransaction", b"{}")


@pytest.mark.parametrize(
    ("version", "missing", "type_", "property_", "format_"),
    [
        (
            "1.6",
            "OccurenceConstraintViolation",
            "TypeConstraintViolation",
            "PropertyConstraintViolation",
            "FormationViolation",
        ),
        (
            "2.0.1",
            "OccurrenceConstraintViolation",
            "TypeConstraintViolation",
            "PropertyConstraintViolation",
            "FormatViolation",
        ),
        (
            "2.1",
            "OccurrenceConstraintViolation",
            "TypeConstraintViolation",
            "PropertyConstraintViolation",
            "FormatViolation",
        ),
    ],
)
def test_code_table_per_version(
    version: str, missing: str, type_: str, property_: str, format_: str
) -> None:
    """D1 missing -> Occurrence; D2 type -> Type; D3 enum/length -> Property; D4 extra ->
    Format; 1.6 keeps its errata spellings (1.6J errata 5.1, 5.2)."""
    if version == "1.6":
        action, ok = (
            "StatusNotification",
            {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
        )
        assert code_of(version, action, {"connectorId": 1, "errorCode": "NoError"}) == missing
        assert code_of(version, action, ok | {"connectorId": "1"}) == type_
        assert code_of(version, action, ok | {"status": "Sleeping"}) == property_
        assert code_of(version, action, ok | {"info": "x" * 51}) == property_
        assert code_of(version, action, ok | {"colour": "red"}) == format_
    else:
        action = "Authorize"
        ok = {"idToken": {"idToken": "ABC", "type": "ISO14443"}}
        assert code_of(version, action, {"idToken": {"type": "ISO14443"}}) == missing
        assert code_of(version, action, {"idToken": {"idToken": 5, "type": "ISO14443"}}) == type_
        # 2.0.1 types idToken.type as an enum; 2.1 as a string[20] (IdTokenEnumStringType).
        bad_type = "Bad" if version == "2.0.1" else "x" * 21
        assert (
            code_of(version, action, {"idToken": {"idToken": "A", "type": bad_type}}) == property_
        )
        too_long = "x" * (37 if version == "2.0.1" else 256)  # 2.1 widened idToken to 255
        assert (
            code_of(version, action, {"idToken": {"idToken": too_long, "type": "ISO14443"}})
            == property_
        )
        assert code_of(version, action, ok | {"colour": "red"}) == format_


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_string_length_boundary(version: str) -> None:
    """CiString20 / identifierString[36]: max is accepted, max+1 is not (ocpp-go tables)."""
    if version == "1.6":
        validate_payload(version, "Authorize", json.dumps({"idTag": "x" * 20}).encode())
        assert code_of(version, "Authorize", {"idTag": "x" * 21}) == "PropertyConstraintViolation"
    else:
        token = {"idToken": {"idToken": "x" * 36, "type": "ISO14443"}}
        validate_payload(version, "Authorize", json.dumps(token).encode())


@pytest.mark.parametrize(
    "value",
    [
        "2024-13-01T00:00:00Z",
        "2024-02-30T00:00:00Z",
        "2024-01-01T00:00:00",
        "2024-01-01",
        "yesterday",
        "2024-01-01T24:00:00Z",
        "2024-01-01T00:00:60Z",
        "",
    ],
)
def test_bad_date_time_is_property_constraint(value: str) -> None:
    """D5: invalid dates, no zone -> PropertyConstraintViolation."""
    assert code_of("2.0.1", "Heartbeat", {"currentTime": value}, response=True) == (
        "PropertyConstraintViolation"
    )


@pytest.mark.parametrize(
    "value", ["2024-01-01t00:00:00z", "2024-01-01 00:00:00Z", "2024-01-01T00:00:00.123456789Z"]
)
def test_named_date_time_cases_accepted(value: str) -> None:
    """Named in docs/error-codes.md: RFC 3339 §5.6 allows lower-case t/z and a space."""
    validate_payload(
        "2.0.1", "Heartbeat", json.dumps({"currentTime": value}).encode(), response=True
    )


@pytest.mark.parametrize("value", [0.3, 21.4, 32.0, 1.0, 0, 10, 1e-1])
def test_multiple_of_tenth_accepts_decimal_values(value: float) -> None:
    """D6: 1.6 chargingRateUnit limits are multipleOf 0.1; 21.4 is valid (spec's intent)."""
    profile = {
        "connectorId": 1,
        "csChargingProfiles": {
            "chargingProfileId": 1,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": value}],
            },
        },
    }
    validate_payload("1.6", "SetChargingProfile", json.dumps(profile).encode())
    profile["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] = 21.45  # type: ignore[index]
    assert code_of("1.6", "SetChargingProfile", profile) == "PropertyConstraintViolation"


def test_integer_written_as_float_is_a_type_error() -> None:
    """Named difference: 1.0 in an integer field is rejected (OCPP integer), draft-04 style."""
    assert (
        code_of(
            "2.0.1",
            "BootNotification",
            {"currentTime": "2026-01-01T00:00:00Z", "interval": 1.0, "status": "Accepted"},
            response=True,
        )
        == "TypeConstraintViolation"
    )


def test_null_for_optional_field_is_a_type_error() -> None:
    """2.0.1 Part 4 §4.1.5: optional fields are omitted, never null."""
    assert (
        code_of(
            "1.6",
            "BootNotification",
            {"chargePointVendor": "A", "chargePointModel": "B", "iccid": None},
        )
        == "TypeConstraintViolation"
    )


def test_payload_not_an_object_is_format_violation() -> None:
    """B9: a payload that is not a JSON object is not a PDU."""
    assert code_of("2.0.1", "Heartbeat", []) == "FormatViolation"
    assert code_of("1.6", "Heartbeat", None) == "FormationViolation"
    with pytest.raises(PayloadError) as info:
        validate_payload("2.0.1", "Heartbeat", b"{")
    assert info.value.code == "FormatViolation"


def test_array_cardinality_is_occurrence() -> None:
    """minItems 1 (1.6 MeterValues.meterValue) is a cardinality: OccurrenceConstraintViolation."""
    assert code_of("1.6", "MeterValues", {"connectorId": 1, "meterValue": []}) == (
        "OccurenceConstraintViolation"
    )


def test_description_names_the_path_but_not_the_value() -> None:
    """CALLERROR descriptions never echo input values (2.0.1 Part 4 §4.2.3)."""
    with pytest.raises(PayloadError) as info:
        validate_payload(
            "1.6",
            "StatusNotification",
            json.dumps(
                {"connectorId": 1, "errorCode": "NoError", "status": "SECRET-VALUE"}
            ).encode(),
        )
    assert "SECRET-VALUE" not in info.value.description
    assert info.value.path == "$.status"
    assert info.value.description.startswith("StatusNotification: Invalid enum value at $.status")
    with pytest.raises(PayloadError) as info:
        validate_payload("1.6", "Heartbeat", b'{"SECRET-KEY": 1}')
    assert "SECRET-KEY" not in info.value.description


def test_classify_fallback() -> None:
    """Anything the table does not name is FormatViolation (documented)."""
    assert classify("Something new - at `$.x`") == (FALLBACK_CODE, "Something new at $.x", "$.x")


def test_docs_table_matches_code() -> None:
    """The code table is published in docs/error-codes.md; one place, kept equal by this test."""
    text = DOCS.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(.+?)` \| (\w+) \| (.+?) \|$", text, flags=re.MULTILINE)
    documented = [row for row in rows if row[1] in {c.value for c in ErrorCode}]
    expected = [(r.prefix, r.code.value, r.meaning) for r in ERROR_CODE_TABLE]
    assert documented == expected
    assert f"| anything else | {FALLBACK_CODE.value} |" in text


class TestLenient:
    """Lenient mode: declared relaxations, each counted, never silent."""

    BOOT: ClassVar[dict[str, str]] = {"chargePointVendor": "ACME", "chargePointModel": "X1"}

    def test_strict_by_default(self) -> None:
        validator = Validator("1.6")
        with pytest.raises(PayloadError):
            validator.decode("BootNotification", json.dumps(self.BOOT | {"x": 1}).encode())
        assert validator.relaxation_counts == {}

    def test_unknown_property_ignored_and_counted(self) -> None:
        validator = Validator("1.6", lenient=frozenset({Relaxation.UNKNOWN_PROPERTIES}))
        message, used = validator.decode(
            "BootNotification", json.dumps(self.BOOT | {"vendorSpecific": 1}).encode()
        )
        assert used == {Relaxation.UNKNOWN_PROPERTIES}
        assert message.charge_point_vendor == "ACME"  # type: ignore[attr-defined]
        assert type(message).__name__ == "BootNotificationRequest"
        assert validator.relaxation_counts[Relaxation.UNKNOWN_PROPERTIES] == 1
        # A valid payload needs no relaxation and is not counted.
        _, used = validator.decode("BootNotification", json.dumps(self.BOOT).encode())
        assert used == frozenset()
        assert validator.relaxation_counts[Relaxation.UNKNOWN_PROPERTIES] == 1

    def test_several_relaxations_in_one_payload(self) -> None:
        validator = Validator("1.6", lenient=frozenset(Relaxation))
        payload = {
            "connectorId": 1,
            "errorCode": "NoError",
            "status": "Sleeping",
            "info": "i" * 80,
            "extra": True,
        }
        message, used = validator.decode("StatusNotification", json.dumps(payload).encode())
        assert used == frozenset(Relaxation)
        assert message.status == "Sleeping"  # type: ignore[attr-defined]
        assert message.info == "i" * 80  # type: ignore[attr-defined]
        assert sum(validator.relaxation_counts.values()) == 3

    def test_relaxation_reaches_nested_types(self) -> None:
        validator = Validator("2.0.1", lenient=frozenset({Relaxation.LONG_STRINGS}))
        token = {"idToken": {"idToken": "x" * 50, "type": "ISO14443"}}
        message, used = validator.decode("Authorize", json.dumps(token).encode())
        assert message.id_token.id_token == "x" * 50  # type: ignore[attr-defined]
        assert used == {Relaxation.LONG_STRINGS}

    def test_undeclared_relaxation_still_rejects(self) -> None:
        validator = Validator("1.6", lenient=frozenset({Relaxation.LONG_STRINGS}))
        with pytest.raises(PayloadError) as info:
            validator.decode("BootNotification", json.dumps(self.BOOT | {"x": 1}).encode())
        assert info.value.code == "FormationViolation"
        with pytest.raises(PayloadError) as info:
            validator.decode("Authorize", b"{}")
        assert info.value.code == "OccurenceConstraintViolation"

    def test_decoders_are_built_once_and_shared_by_every_validator_of_a_version(self) -> None:
        """A decoder per type and version, not per connection (memory per idle station)."""
        first, second = (Validator("1.6", lenient=frozenset(Relaxation)) for _ in range(2))
        for validator in (first, second, first):
            validator.decode("BootNotification", json.dumps(self.BOOT | {"x": 1}).encode())
        strict = first._cache.strict_requests["BootNotification"]
        assert isinstance(strict, msgspec.json.Decoder)
        assert second._cache is first._cache
        relaxed = [key for key in first._cache.relaxed_decoders if key[0] == "BootNotification"]
        assert len(relaxed) == 1
        assert Validator("2.0.1")._cache is not first._cache


def test_uri_format_error_is_short() -> None:
    """1.6 GetDiagnostics.location is format: uri; the description names no 1.4 KB regex."""
    with pytest.raises(PayloadError) as info:
        validate_payload("1.6", "GetDiagnostics", b'{"location": "not a uri"}')
    assert info.value.code == "PropertyConstraintViolation"
    assert info.value.description == (
        "GetDiagnostics: Expected `str` matching the property's pattern at $.location"
    )


def _meter_values(version: str, sampled: str, head: str = "") -> bytes:
    """A valid MeterValues of ``version`` with one meterValue holding ``sampled``."""
    where = '"connectorId":1' if version == "1.6" else '"evseId":1'
    reading = f'{{"timestamp":"2026-01-01T00:00:00Z","sampledValue":[{sampled}]}}'
    return ("{" + f'{head}{where},"meterValue":[{reading}]' + "}").encode()


@pytest.mark.parametrize(
    ("version", "code", "value"),
    [("1.6", "FormationViolation", '"1"'), ("2.0.1", "FormatViolation", "1")],
)
@pytest.mark.parametrize(
    "shape", ["top level", "nested in an array", "same key spelt with an escape"]
)
def test_B7_repeated_key_is_a_format_violation(
    version: str, code: str, value: str, shape: str
) -> None:
    """B7 (reliability.md §4): a key repeated within one object is not a usable PDU (RFC 8259
    §4 leaves its meaning undefined; msgspec would keep the last value while the message log
    keeps both). 1.6 keeps the spelling FormationViolation (errata 5.1)."""
    one = f'{{"value":{value}}}'
    payload = {
        "top level": _meter_values(
            version,
            one,
            head=f'"meterValue":[{{"timestamp":"2026-01-01T00:00:00Z","sampledValue":[{one}]}}],',
        ),
        "nested in an array": _meter_values(version, f'{{"value":{value},"value":{value}}}'),
        "same key spelt with an escape": _meter_values(
            version, f'{{"value":{value},"\\u0076alue":{value}}}'
        ),
    }[shape]
    validate_payload(version, "MeterValues", _meter_values(version, one))  # the valid twin
    with pytest.raises(PayloadError) as info:
        validate_payload(version, "MeterValues", payload)
    assert info.value.code == code
    assert "repeats a key" in str(info.value)


def test_B7_equal_keys_in_sibling_objects_are_not_repeats() -> None:
    """Only a repeat within one object counts: every sampledValue has its own ``value``."""
    payload = (
        b'{"connectorId":1,"meterValue":[{"timestamp":"2026-01-01T00:00:00Z",'
        b'"sampledValue":[{"value":"1"},{"value":"2"}]},'
        b'{"timestamp":"2026-01-01T00:00:01Z","sampledValue":[{"value":"3"}]}]}'
    )
    message = validate_payload("1.6", "MeterValues", payload)
    assert [s.value for mv in message.meter_value for s in mv.sampled_value] == ["1", "2", "3"]


@pytest.mark.parametrize(
    ("payload", "repeats"),
    [
        (b'{"a":1,"b":{"c":[1,{"d":2}]}}', False),  # compact: proved by the round trip
        (b'{"a": 1, "b": {"c": [1, {"d": 2}]}}', False),  # spaced: the exact scan decides
        (b'{"a":1.50,"b":1e3,"c":"\\u00e9"}', False),  # other spellings: the exact scan
        (b'{"a":1,"b":{"c":[1,{"d":2,"d":2}]}}', True),
        (b'{"a" :1,"a":2,"x":"\\":"}', True),  # a spaced repeat hidden by a ": in a value
        (b'{"a":1,"\\u0061":1}', True),
        (b'{"big":123456789012345678901234567890,"big":1}', True),
    ],
)
def test_B7_repeat_check_agrees_with_the_exact_scan(payload: bytes, repeats: bool) -> None:
    """B7: the round-trip shortcut (re-encoding the generic decode gives the same bytes, so
    no key repeated) never hides a repeat, and leaves every other payload to the exact scan."""
    assert has_duplicate_keys(payload) is repeats
