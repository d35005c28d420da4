"""OCPP 1.6 configuration keys (1.6 §9), GetConfiguration (§5.8), ChangeConfiguration (§5.3).

Every reply struct is round-tripped through ``validate_payload`` so it is a valid 1.6
payload, not just a Python object.
"""

from __future__ import annotations

import json

import msgspec
import pytest

from ocppkit.messages import v16
from ocppkit.protocol import validate_payload
from ocppkit.station.config16 import (
    STANDARD_KEYS,
    Configuration16,
    ConfigurationError,
    KeyType,
)

Status = v16.ConfigurationStatus

#: 1.6 §9.1-§9.4: the keys the spec marks "required" for a station with every profile.
REQUIRED_16 = {
    "AuthorizeRemoteTxRequests",
    "ClockAlignedDataInterval",
    "ConnectionTimeOut",
    "ConnectorPhaseRotation",
    "GetConfigurationMaxKeys",
    "HeartbeatInterval",
    "LocalAuthorizeOffline",
    "LocalPreAuthorize",
    "MeterValuesAlignedData",
    "MeterValuesSampledData",
    "MeterValueSampleInterval",
    "NumberOfConnectors",
    "ResetRetries",
    "StopTransactionOnEVSideDisconnect",
    "StopTransactionOnInvalidId",
    "StopTxnAlignedData",
    "StopTxnSampledData",
    "SupportedFeatureProfiles",
    "TransactionMessageAttempts",
    "TransactionMessageRetryInterval",
    "UnlockConnectorOnEVSideDisconnect",
    "LocalAuthListEnabled",
    "LocalAuthListMaxLength",
    "SendLocalListMaxLength",
    "ChargeProfileMaxStackLevel",
    "ChargingScheduleAllowedChargingRateUnit",
    "ChargingScheduleMaxPeriods",
    "MaxChargingProfilesInstalled",
}


def roundtrip_response(action: str, struct: msgspec.Struct) -> msgspec.Struct:
    return validate_payload("1.6", action, msgspec.json.encode(struct), response=True)


def change(config: Configuration16, key: str, value: str) -> Status:
    request = validate_payload(
        "1.6", "ChangeConfiguration", msgspec.json.encode({"key": key, "value": value})
    )
    assert isinstance(request, v16.ChangeConfigurationRequest)
    response = config.handle_change_configuration(request)
    roundtrip_response("ChangeConfiguration", response)
    return response.status


def test_table_holds_every_required_key_of_section_9() -> None:
    """1.6 §9: every required standard key is in the table and marked required."""
    required = {spec.name for spec in STANDARD_KEYS if spec.required}
    assert required >= REQUIRED_16
    assert len({spec.name for spec in STANDARD_KEYS}) == len(STANDARD_KEYS)


def test_every_default_is_valid_for_its_own_key() -> None:
    """Each default passes the key's own validation (so a fresh station is consistent)."""
    config = Configuration16()
    for spec in STANDARD_KEYS:
        if spec.name == "AuthorizationKey":
            continue  # empty = no password set; not a value the CSMS may set (A00.FR.205)
        assert config._validate(spec, spec.default) == spec.default, spec.name
    assert change(config, "AuthorizationKey", "") is Status.REJECTED


def test_fresh_station_snapshot_roundtrips() -> None:
    """A station never configured (no AuthorizationKey yet) restores from its snapshot."""
    config = Configuration16()
    restored = Configuration16.from_dict(json.loads(json.dumps(config.to_dict())))
    assert restored.to_dict() == config.to_dict()
    assert restored.authorization_key is None


def test_get_configuration_without_keys_returns_all_but_write_only() -> None:
    """§5.8: no key -> every key; errata §3.10: AuthorizationKey (WriteOnly) never returned."""
    config = Configuration16()
    request = validate_payload("1.6", "GetConfiguration", b"{}")
    assert isinstance(request, v16.GetConfigurationRequest)
    response = roundtrip_response("GetConfiguration", config.handle_get_configuration(request))
    assert isinstance(response, v16.GetConfigurationResponse)
    assert isinstance(response.configuration_key, list)
    names = {kv.key for kv in response.configuration_key}
    assert "AuthorizationKey" not in names
    assert names == {s.name for s in STANDARD_KEYS if not s.write_only}
    assert response.unknown_key is msgspec.UNSET
    readonly = {kv.key: kv.readonly for kv in response.configuration_key}
    assert readonly["NumberOfConnectors"] is True
    assert readonly["HeartbeatInterval"] is False


def test_get_configuration_reports_unknown_and_write_only_keys_as_unknown() -> None:
    """§5.8: requested keys the station lacks go in unknownKey; so does the WriteOnly key."""
    config = Configuration16({"AuthorizationKey": "0123456789abcdef0123456789abcdef"})
    payload = json.dumps({"key": ["HeartbeatInterval", "NoSuchKey", "AuthorizationKey"]})
    request = validate_payload("1.6", "GetConfiguration", payload.encode())
    assert isinstance(request, v16.GetConfigurationRequest)
    response = config.handle_get_configuration(request)
    roundtrip_response("GetConfiguration", response)
    assert response.configuration_key == [
        v16.KeyValue(key="HeartbeatInterval", readonly=False, value="300")
    ]
    assert response.unknown_key == ["NoSuchKey", "AuthorizationKey"]
    assert b"0123456789abcdef" not in msgspec.json.encode(response)


def test_change_configuration_accepts_valid_value_and_get_returns_it() -> None:
    """§5.3: a valid value of a read-write key -> Accepted, and it is in force at once."""
    config = Configuration16()
    assert change(config, "HeartbeatInterval", "120") is Status.ACCEPTED
    assert config.heartbeat_interval == 120
    assert config.get_configuration(["HeartbeatInterval"])[0][0].value == "120"


def test_change_configuration_unknown_key_is_not_supported() -> None:
    """§5.3: a key the station does not know -> NotSupported."""
    assert change(Configuration16(), "VendorFoo", "1") is Status.NOT_SUPPORTED


def test_change_configuration_read_only_key_is_rejected() -> None:
    """§5.3 / §9: read-only keys (NumberOfConnectors) cannot be changed -> Rejected."""
    config = Configuration16()
    assert change(config, "NumberOfConnectors", "2") is Status.REJECTED
    assert config.number_of_connectors == 1


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("HeartbeatInterval", "abc"),  # integer key, not an integer
        ("HeartbeatInterval", "-1"),  # below 0
        ("HeartbeatInterval", "99999999999"),  # beyond a 32-bit integer
        ("HeartbeatInterval", "1.5"),
        ("LocalPreAuthorize", "yes"),  # boolean key: only true/false
        ("LightIntensity", "101"),  # percentage
        ("MeterValuesSampledData", "Energy.Active.Import.Register,Bogus"),  # §9.1 measurands
        ("MeterValuesSampledData", "Voltage,,Frequency"),  # empty item
        ("MeterValuesSampledData", "Voltage,Voltage"),  # duplicate
        ("ConnectorPhaseRotation", "1.XYZ"),  # §9.1 phase rotation values
        ("SecurityProfile", "4"),  # 0..3
        ("AuthorizationKey", "short"),  # A00.FR.205: at least 16 bytes
        ("AuthorizationKey", "0123456789abcdef0123456789abcdef0123456789"),  # 42 chars > 40
    ],
)
def test_change_configuration_invalid_value_is_rejected(key: str, value: str) -> None:
    """§5.3: a value the key does not allow -> Rejected, and the old value stays."""
    config = Configuration16()
    before = config.value(key)
    assert change(config, key, value) is Status.REJECTED
    assert config.value(key) == before


def test_boolean_values_are_case_insensitive_and_normalised() -> None:
    """§9 boolean keys: "True" is read as true and reported in canonical lower case."""
    config = Configuration16()
    assert change(config, "LocalPreAuthorize", "True") is Status.ACCEPTED
    assert config.local_pre_authorize is True
    assert config.value("LocalPreAuthorize") == "true"


def test_measurand_list_respects_its_max_length_key() -> None:
    """§9.1 MeterValuesSampledDataMaxLength bounds the items of MeterValuesSampledData."""
    config = Configuration16({"MeterValuesSampledDataMaxLength": "2"})
    assert change(config, "MeterValuesSampledData", "Voltage, Current.Import") is Status.ACCEPTED
    assert config.meter_values_sampled_data == [
        v16.Measurand.VOLTAGE,
        v16.Measurand.CURRENT_IMPORT,
    ]
    assert change(config, "MeterValuesSampledData", "Voltage,Current.Import,SoC") is (
        Status.REJECTED
    )


def test_empty_measurand_list_is_allowed() -> None:
    """§9.1: an empty StopTxnSampledData means no sampled data in StopTransaction."""
    config = Configuration16()
    assert change(config, "StopTxnSampledData", "Voltage") is Status.ACCEPTED
    assert change(config, "StopTxnSampledData", "") is Status.ACCEPTED
    assert config.stop_txn_sampled_data == []


def test_reboot_required_key_takes_effect_after_reboot() -> None:
    """§5.3 RebootRequired: accepted, applied only after the station restarts."""
    config = Configuration16()
    assert change(config, "ConnectorPhaseRotation", "0.RST,1.RTS") is Status.REBOOT_REQUIRED
    assert config.value("ConnectorPhaseRotation") == "0.RST,1.RST"
    assert config.pending == {"ConnectorPhaseRotation": "0.RST,1.RTS"}
    config.reboot()
    assert config.value("ConnectorPhaseRotation") == "0.RST,1.RTS"
    assert config.pending == {}


def test_extra_reboot_keys_answer_reboot_required() -> None:
    """A station template may declare more keys that need a restart (§5.3)."""
    config = Configuration16(extra_reboot_keys=["WebSocketPingInterval"])
    assert change(config, "WebSocketPingInterval", "10") is Status.REBOOT_REQUIRED
    assert config.web_socket_ping_interval == 0


def test_security_profile_may_be_raised_but_never_lowered() -> None:
    """Security whitepaper A00.FR.005: the profile is not lowered over OCPP."""
    config = Configuration16({"SecurityProfile": "1"})
    assert change(config, "SecurityProfile", "0") is Status.REJECTED
    assert change(config, "SecurityProfile", "2") is Status.ACCEPTED
    assert change(config, "SecurityProfile", "1") is Status.REJECTED
    assert config.security_profile == 2


@pytest.mark.parametrize(
    "key",
    [
        "0123456789ABCDEF0123456789ABCDEF",  # 16 bytes as 32 hex digits
        "0123456789abcdef0123456789abcdef01234567",  # 20 bytes as 40 hex digits
        "plaintextpassword",  # 17 plain characters (OCTT TC_085 form)
    ],
)
def test_authorization_key_accepts_hex_and_plain_forms(key: str) -> None:
    """A00.FR.205 / errata §3.10: 16..20 bytes, as hex (≤40 chars) or plain characters."""
    config = Configuration16()
    assert change(config, "AuthorizationKey", key) is Status.ACCEPTED
    assert config.authorization_key == key
    known, _ = config.get_configuration()
    assert all(kv.key != "AuthorizationKey" for kv in known)


def test_typed_accessors_read_the_defaults() -> None:
    """The runtime reads typed values; defaults are those of the table."""
    config = Configuration16()
    assert config.heartbeat_interval == 300
    assert config.meter_value_sample_interval == 60
    assert config.clock_aligned_data_interval == 0
    assert config.meter_values_sampled_data == [v16.Measurand.ENERGY_ACTIVE_IMPORT_REGISTER]
    assert config.meter_values_aligned_data == [v16.Measurand.ENERGY_ACTIVE_IMPORT_REGISTER]
    assert config.stop_txn_aligned_data == []
    assert config.transaction_message_attempts == 3
    assert config.transaction_message_retry_interval == 60
    assert config.local_pre_authorize is False
    assert config.local_authorize_offline is True
    assert config.allow_offline_tx_for_unknown_id is False
    assert config.authorization_cache_enabled is True
    assert config.local_auth_list_enabled is True
    assert config.local_auth_list_max_length == 1000
    assert config.send_local_list_max_length == 100
    assert config.stop_transaction_on_invalid_id is True
    assert config.stop_transaction_on_ev_side_disconnect is True
    assert config.authorize_remote_tx_requests is True
    assert config.connection_timeout == 60
    assert config.reset_retries == 3
    assert config.minimum_status_duration == 0
    assert config.authorization_key is None


def test_filtered_table_models_a_station_without_a_profile() -> None:
    """A station without SmartCharging lacks its keys: ChangeConfiguration -> NotSupported."""
    keys = [spec for spec in STANDARD_KEYS if spec.profile != "SmartCharging"]
    config = Configuration16(keys=keys)
    assert change(config, "ChargeProfileMaxStackLevel", "3") is Status.NOT_SUPPORTED
    assert config.get_configuration(["ChargingScheduleMaxPeriods"])[1] == [
        "ChargingScheduleMaxPeriods"
    ]


def test_bad_initial_values_are_local_misuse() -> None:
    """Templates with unknown keys or invalid values fail loudly at construction."""
    with pytest.raises(ConfigurationError):
        Configuration16({"NoSuchKey": "1"})
    with pytest.raises(ConfigurationError):
        Configuration16({"HeartbeatInterval": "soon"})


def test_initial_csl_is_checked_against_a_max_length_given_with_it() -> None:
    """The *MaxLength key is applied before the list it bounds, whatever the order given."""
    with pytest.raises(ConfigurationError):
        Configuration16(
            {"MeterValuesSampledData": "Voltage,SoC", "MeterValuesSampledDataMaxLength": "1"}
        )


def test_snapshot_roundtrips_through_json() -> None:
    """to_dict/from_dict keep values and pending reboot values (persisted per station)."""
    config = Configuration16()
    change(config, "HeartbeatInterval", "42")
    change(config, "AuthorizationKey", "0123456789abcdef0123456789abcdef")
    change(config, "ConnectorPhaseRotation", "0.RST,1.TSR")
    restored = Configuration16.from_dict(json.loads(json.dumps(config.to_dict())))
    assert restored.heartbeat_interval == 42
    assert restored.authorization_key == "0123456789abcdef0123456789abcdef"
    assert restored.pending == {"ConnectorPhaseRotation": "0.RST,1.TSR"}
    assert restored.to_dict() == config.to_dict()


def test_snapshot_rejects_malformed_data() -> None:
    """A corrupt snapshot is reported, not half-loaded."""
    with pytest.raises(ConfigurationError):
        Configuration16.from_dict({"values": ["HeartbeatInterval"]})
    with pytest.raises(ConfigurationError):
        Configuration16.from_dict({"values": {"HeartbeatInterval": "-5"}})


def test_key_types_cover_the_four_of_section_9() -> None:
    """§9 uses boolean, integer, CSL and string values; each appears in the table."""
    assert {spec.type for spec in STANDARD_KEYS} == set(KeyType)


def test_every_value_fits_the_wire_limits() -> None:
    """GetConfiguration.conf: key ≤ 50 and value ≤ 500 characters (schema)."""
    known, _ = Configuration16().get_configuration()
    for kv in known:
        assert len(kv.key) <= 50
        assert isinstance(kv.value, str) and len(kv.value) <= 500
