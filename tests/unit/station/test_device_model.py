"""OCPP 2.0.1 device model: B05 SetVariables, B06 GetVariables, B07 GetBaseReport.

Requests are decoded from wire JSON with ``validate_payload`` and every reply (and every
NotifyReport) is validated again, so all structs are valid 2.0.1 payloads.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from ocppkit.messages import v201
from ocppkit.messages.v201 import (
    AttributeEnum,
    GetVariableStatusEnum,
    ReportBaseEnum,
    SetVariableStatusEnum,
)
from ocppkit.protocol import validate_payload
from ocppkit.station.device_model import (
    SUMMARY_VARIABLES,
    DeviceModel,
    DeviceModelError,
    TooManyItemsError,
    VariableKey,
    standard_variables,
)

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)

#: Part 2 Appendix: required variables of the controllers a station must have.
REQUIRED = [
    ("OCPPCommCtrlr", "MessageTimeout", "Default"),
    ("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent"),
    ("OCPPCommCtrlr", "MessageAttemptInterval", "TransactionEvent"),
    ("OCPPCommCtrlr", "NetworkConfigurationPriority", None),
    ("OCPPCommCtrlr", "NetworkProfileConnectionAttempts", None),
    ("OCPPCommCtrlr", "OfflineThreshold", None),
    ("OCPPCommCtrlr", "ResetRetries", None),
    ("OCPPCommCtrlr", "RetryBackOffRandomRange", None),
    ("OCPPCommCtrlr", "RetryBackOffRepeatTimes", None),
    ("OCPPCommCtrlr", "RetryBackOffWaitMinimum", None),
    ("OCPPCommCtrlr", "UnlockOnEVSideDisconnect", None),
    ("OCPPCommCtrlr", "WebSocketPingInterval", None),
    ("OCPPCommCtrlr", "FileTransferProtocols", None),
    ("TxCtrlr", "EVConnectionTimeOut", None),
    ("TxCtrlr", "StopTxOnEVSideDisconnect", None),
    ("TxCtrlr", "StopTxOnInvalidId", None),
    ("TxCtrlr", "TxStartPoint", None),
    ("TxCtrlr", "TxStopPoint", None),
    ("SampledDataCtrlr", "TxEndedMeasurands", None),
    ("SampledDataCtrlr", "TxEndedInterval", None),
    ("SampledDataCtrlr", "TxStartedMeasurands", None),
    ("SampledDataCtrlr", "TxUpdatedMeasurands", None),
    ("SampledDataCtrlr", "TxUpdatedInterval", None),
    ("AlignedDataCtrlr", "Measurands", None),
    ("AlignedDataCtrlr", "Interval", None),
    ("AlignedDataCtrlr", "TxEndedMeasurands", None),
    ("AlignedDataCtrlr", "TxEndedInterval", None),
    ("AuthCtrlr", "AuthorizeRemoteStart", None),
    ("AuthCtrlr", "LocalAuthorizeOffline", None),
    ("AuthCtrlr", "LocalPreAuthorize", None),
    ("LocalAuthListCtrlr", "Entries", None),
    ("LocalAuthListCtrlr", "ItemsPerMessage", None),
    ("LocalAuthListCtrlr", "BytesPerMessage", None),
    ("SecurityCtrlr", "OrganizationName", None),
    ("SecurityCtrlr", "CertificateEntries", None),
    ("SecurityCtrlr", "SecurityProfile", None),
    ("DeviceDataCtrlr", "ItemsPerMessage", "GetReport"),
    ("DeviceDataCtrlr", "ItemsPerMessage", "GetVariables"),
    ("DeviceDataCtrlr", "BytesPerMessage", "GetReport"),
    ("DeviceDataCtrlr", "BytesPerMessage", "GetVariables"),
    ("ClockCtrlr", "DateTime", None),
    ("ClockCtrlr", "TimeSource", None),
    ("SmartChargingCtrlr", "Entries", "ChargingProfiles"),
    ("SmartChargingCtrlr", "LimitChangeSignificance", None),
    ("SmartChargingCtrlr", "PeriodsPerSchedule", None),
    ("SmartChargingCtrlr", "ProfileStackLevel", None),
    ("SmartChargingCtrlr", "RateUnit", None),
    ("ChargingStation", "AvailabilityState", None),
    ("ChargingStation", "Available", None),
    ("ChargingStation", "SupplyPhases", None),
]


def item(
    component: str,
    variable: str,
    *,
    var_instance: str | None = None,
    evse: int | None = None,
    connector: int | None = None,
    attribute: str | None = None,
    value: str | None = None,
) -> dict[str, Any]:
    comp: dict[str, Any] = {"name": component}
    if evse is not None:
        comp["evse"] = {"id": evse} if connector is None else {"id": evse, "connectorId": connector}
    var: dict[str, Any] = {"name": variable}
    if var_instance is not None:
        var["instance"] = var_instance
    data: dict[str, Any] = {"component": comp, "variable": var}
    if attribute is not None:
        data["attributeType"] = attribute
    if value is not None:
        data["attributeValue"] = value
    return data


def get(model: DeviceModel, *items: dict[str, Any]) -> list[v201.GetVariableResult]:
    payload = json.dumps({"getVariableData": list(items)}).encode()
    request = validate_payload("2.0.1", "GetVariables", payload)
    assert isinstance(request, v201.GetVariablesRequest)
    response = model.handle_get_variables(request)
    validate_payload("2.0.1", "GetVariables", msgspec.json.encode(response), response=True)
    return response.get_variable_result


def set_(model: DeviceModel, *items: dict[str, Any]) -> list[v201.SetVariableResult]:
    payload = json.dumps({"setVariableData": list(items)}).encode()
    request = validate_payload("2.0.1", "SetVariables", payload)
    assert isinstance(request, v201.SetVariablesRequest)
    response = model.handle_set_variables(request)
    validate_payload("2.0.1", "SetVariables", msgspec.json.encode(response), response=True)
    return response.set_variable_result


def test_table_has_the_required_variables_of_the_appendix() -> None:
    """2.0.1 Part 2 Appendix: the required variables of each controller are present."""
    keys = {(k.component, k.variable, k.variable_instance) for k in DeviceModel().variable_keys()}
    missing = [row for row in REQUIRED if row not in keys]
    assert missing == []


def test_topology_has_a_component_per_evse_and_connector() -> None:
    """Physical components: EVSE per evse id, Connector per (evse, connector)."""
    keys = DeviceModel(standard_variables((2, 1))).variable_keys()
    evses = {k.evse for k in keys if k.component == "EVSE"}
    connectors = {(k.evse, k.connector) for k in keys if k.component == "Connector"}
    assert evses == {1, 2}
    assert connectors == {(1, 1), (1, 2), (2, 1)}


def test_get_variables_accepted_returns_the_actual_value() -> None:
    """B06: a known variable -> Accepted with its Actual value."""
    (result,) = get(DeviceModel(), item("OCPPCommCtrlr", "HeartbeatInterval"))
    assert result.attribute_status is GetVariableStatusEnum.ACCEPTED
    assert result.attribute_value == "300"
    assert result.attribute_type is msgspec.UNSET


def test_get_variables_instance_and_evse_address_the_right_variable() -> None:
    """B06: component instance/EVSE/connector and variable instance are part of the key."""
    results = get(
        DeviceModel(),
        item("OCPPCommCtrlr", "MessageAttempts", var_instance="TransactionEvent"),
        item("OCPPCommCtrlr", "MessageAttempts"),
        item("EVSE", "Power", evse=1, attribute="MaxSet"),
        item("Connector", "ConnectorType", evse=1, connector=1),
    )
    assert [r.attribute_status for r in results] == [
        GetVariableStatusEnum.ACCEPTED,
        GetVariableStatusEnum.UNKNOWN_VARIABLE,
        GetVariableStatusEnum.ACCEPTED,
        GetVariableStatusEnum.ACCEPTED,
    ]
    assert results[0].attribute_value == "3"
    assert results[2].attribute_value == "22000.0"
    assert results[2].attribute_type is AttributeEnum.MAX_SET
    assert results[3].attribute_value == "cType2"


def test_get_variables_unknown_component_and_variable() -> None:
    """B06: unknown component -> UnknownComponent; unknown variable -> UnknownVariable."""
    results = get(
        DeviceModel(),
        item("NoSuchCtrlr", "Enabled"),
        item("EVSE", "Power", evse=9),
        item("AuthCtrlr", "NoSuchVariable"),
    )
    assert [r.attribute_status for r in results] == [
        GetVariableStatusEnum.UNKNOWN_COMPONENT,
        GetVariableStatusEnum.UNKNOWN_COMPONENT,
        GetVariableStatusEnum.UNKNOWN_VARIABLE,
    ]
    assert all(r.attribute_value is msgspec.UNSET for r in results)


def test_get_variables_unsupported_attribute_type() -> None:
    """B06: an attribute type the variable lacks -> NotSupportedAttributeType."""
    (result,) = get(DeviceModel(), item("AuthCtrlr", "LocalPreAuthorize", attribute="Target"))
    assert result.attribute_status is GetVariableStatusEnum.NOT_SUPPORTED_ATTRIBUTE_TYPE
    assert result.attribute_type is AttributeEnum.TARGET


def test_get_variables_write_only_is_rejected() -> None:
    """B06: a WriteOnly variable (BasicAuthPassword) is never read back -> Rejected."""
    model = DeviceModel()
    set_(model, item("SecurityCtrlr", "BasicAuthPassword", value="a-secret-of-20-chars"))
    (result,) = get(model, item("SecurityCtrlr", "BasicAuthPassword"))
    assert result.attribute_status is GetVariableStatusEnum.REJECTED
    assert result.attribute_value is msgspec.UNSET
    assert model.basic_auth_password == "a-secret-of-20-chars"


def test_get_variables_more_items_than_allowed_is_the_csms_fault() -> None:
    """DeviceDataCtrlr.ItemsPerMessage[GetVariables]: the CSMS SHALL NOT send more."""
    limit = DeviceModel().items_per_message("GetVariables")
    items = [item("AuthCtrlr", "LocalPreAuthorize")] * (limit + 1)
    request = validate_payload(
        "2.0.1", "GetVariables", json.dumps({"getVariableData": items}).encode()
    )
    assert isinstance(request, v201.GetVariablesRequest)
    with pytest.raises(TooManyItemsError) as excinfo:
        DeviceModel().handle_get_variables(request)
    assert excinfo.value.code == "OccurrenceConstraintViolation"


def test_set_variables_accepted_changes_the_value_and_accessor() -> None:
    """B05: a valid value of a ReadWrite variable -> Accepted, in force at once."""
    model = DeviceModel()
    results = set_(
        model,
        item("OCPPCommCtrlr", "HeartbeatInterval", value="60"),
        item("AuthCtrlr", "LocalPreAuthorize", value="true"),
        item("SampledDataCtrlr", "TxUpdatedMeasurands", value="Voltage,Current.Import"),
    )
    assert {r.attribute_status for r in results} == {SetVariableStatusEnum.ACCEPTED}
    assert model.heartbeat_interval == 60
    assert model.local_pre_authorize is True
    assert model.tx_updated_measurands == [
        v201.MeasurandEnum.VOLTAGE,
        v201.MeasurandEnum.CURRENT_IMPORT,
    ]
    (read,) = get(model, item("OCPPCommCtrlr", "HeartbeatInterval"))
    assert read.attribute_value == "60"


def test_set_variables_read_only_is_rejected() -> None:
    """B05: a ReadOnly attribute cannot be set -> Rejected (SecurityProfile, B09)."""
    model = DeviceModel()
    (result,) = set_(model, item("SecurityCtrlr", "SecurityProfile", value="2"))
    assert result.attribute_status is SetVariableStatusEnum.REJECTED
    assert isinstance(result.attribute_status_info, v201.StatusInfo)
    assert model.security_profile == 0


@pytest.mark.parametrize(
    ("component", "variable", "value"),
    [
        ("OCPPCommCtrlr", "HeartbeatInterval", "often"),  # integer
        ("OCPPCommCtrlr", "HeartbeatInterval", "-1"),  # below minLimit 0
        ("AuthCtrlr", "LocalPreAuthorize", "1"),  # boolean is true/false
        ("SmartChargingCtrlr", "LimitChangeSignificance", "NaN"),  # decimal, finite
        ("SmartChargingCtrlr", "LimitChangeSignificance", "abc"),  # decimal
        ("SmartChargingCtrlr", "LimitChangeSignificance", "101"),  # above maxLimit 100
        ("AuthCacheCtrlr", "Policy", "Random"),  # OptionList valuesList
        ("SampledDataCtrlr", "TxUpdatedMeasurands", "Voltage,Bogus"),  # MemberList
        ("SampledDataCtrlr", "TxUpdatedMeasurands", "Voltage,Voltage"),  # duplicate member
        ("TxCtrlr", "TxStartPoint", ""),  # at least one start point
        ("ClockCtrlr", "TimeSource", "Sundial"),  # SequenceList valuesList
        ("SecurityCtrlr", "BasicAuthPassword", "short"),  # string minLimit 16 (A00.FR.205)
        ("SecurityCtrlr", "OrganizationName", "x" * 51),  # string maxLimit 50
    ],
)
def test_set_variables_value_outside_characteristics_is_rejected(
    component: str, variable: str, value: str
) -> None:
    """B05: a value that does not match the variable's characteristics -> Rejected."""
    model = DeviceModel()
    (result,) = set_(model, item(component, variable, value=value))
    assert result.attribute_status is SetVariableStatusEnum.REJECTED
    assert isinstance(result.attribute_status_info, v201.StatusInfo)
    assert result.attribute_status_info.reason_code == "InvalidValue"


def test_set_variables_value_longer_than_configuration_value_size() -> None:
    """DeviceDataCtrlr.ConfigurationValueSize bounds a SetVariables value -> Rejected."""
    key = VariableKey("DeviceDataCtrlr", "ConfigurationValueSize")
    model = DeviceModel(values={key: "10"})
    (result,) = set_(model, item("SecurityCtrlr", "OrganizationName", value="x" * 11))
    assert result.attribute_status is SetVariableStatusEnum.REJECTED
    assert isinstance(result.attribute_status_info, v201.StatusInfo)
    assert result.attribute_status_info.reason_code == "ValueTooLarge"


def test_set_variables_unknown_component_variable_and_attribute() -> None:
    """B05: UnknownComponent, UnknownVariable, NotSupportedAttributeType."""
    results = set_(
        DeviceModel(),
        item("NoSuchCtrlr", "Enabled", value="true"),
        item("AuthCtrlr", "NoSuch", value="true"),
        item("AuthCtrlr", "LocalPreAuthorize", attribute="MinSet", value="true"),
    )
    assert [r.attribute_status for r in results] == [
        SetVariableStatusEnum.UNKNOWN_COMPONENT,
        SetVariableStatusEnum.UNKNOWN_VARIABLE,
        SetVariableStatusEnum.NOT_SUPPORTED_ATTRIBUTE_TYPE,
    ]
    assert results[2].attribute_type is AttributeEnum.MIN_SET


def test_set_variables_reboot_required_applies_after_reboot() -> None:
    """B05: a change taken at the next start -> RebootRequired; applied at reboot."""
    model = DeviceModel()
    key = VariableKey("OCPPCommCtrlr", "NetworkConfigurationPriority")
    (result,) = set_(model, item("OCPPCommCtrlr", "NetworkConfigurationPriority", value="1,0"))
    assert result.attribute_status is SetVariableStatusEnum.REBOOT_REQUIRED
    assert model.actual(key) == "0"
    model.reboot()
    assert model.actual(key) == "1,0"


def test_set_variables_items_are_independent() -> None:
    """B05: each item is judged alone; a rejected one does not undo an accepted one."""
    model = DeviceModel()
    results = set_(
        model,
        item("OCPPCommCtrlr", "OfflineThreshold", value="120"),
        item("OCPPCommCtrlr", "OfflineThreshold", value="bad"),
    )
    assert [r.attribute_status for r in results] == [
        SetVariableStatusEnum.ACCEPTED,
        SetVariableStatusEnum.REJECTED,
    ]
    assert model.offline_threshold == 120


def notify(model: DeviceModel, base: ReportBaseEnum, **limits: int) -> list[v201.ReportData]:
    messages = model.notify_reports(7, base, generated_at=NOW, **limits)
    collected: list[v201.ReportData] = []
    for seq_no, message in enumerate(messages):
        validate_payload("2.0.1", "NotifyReport", msgspec.json.encode(message))
        assert message.seq_no == seq_no
        assert message.request_id == 7
        last = seq_no == len(messages) - 1
        assert (message.tbc is msgspec.UNSET) if last else (message.tbc is True)
        if message.report_data is not msgspec.UNSET:
            assert isinstance(message.report_data, list)
            collected.extend(message.report_data)
    return collected


def test_full_inventory_reports_every_variable() -> None:
    """B07: FullInventory -> every component/variable in NotifyReport."""
    model = DeviceModel()
    data = notify(model, ReportBaseEnum.FULL_INVENTORY)
    assert len(data) == len(model.variable_keys())


def test_configuration_inventory_reports_only_writable_variables() -> None:
    """B07: ConfigurationInventory -> the variables the CSMS can configure."""
    data = notify(DeviceModel(), ReportBaseEnum.CONFIGURATION_INVENTORY)
    names = {d.variable.name for d in data}
    assert "HeartbeatInterval" in names
    assert "SecurityProfile" not in names
    for entry in data:
        assert any(
            a.mutability is not v201.MutabilityEnum.READ_ONLY for a in entry.variable_attribute
        )


def test_summary_inventory_reports_availability() -> None:
    """B07: SummaryInventory -> the availability states of the components."""
    data = notify(DeviceModel(standard_variables((1, 1))), ReportBaseEnum.SUMMARY_INVENTORY)
    assert {d.variable.name for d in data} <= {"AvailabilityState", "Available", "Problem"}
    components = {msgspec.json.encode(d.component) for d in data}
    assert msgspec.json.encode(v201.Component(name="EVSE", evse=v201.EVSE(id=2))) in components
    connector = v201.Component(name="Connector", evse=v201.EVSE(id=2, connector_id=1))
    assert msgspec.json.encode(connector) in components
    assert msgspec.json.encode(v201.Component(name="ChargingStation")) in components


def test_report_never_contains_a_write_only_value() -> None:
    """A WriteOnly value (BasicAuthPassword) is reported without its value."""
    model = DeviceModel()
    set_(model, item("SecurityCtrlr", "BasicAuthPassword", value="a-secret-of-20-chars"))
    for base in ReportBaseEnum:
        for message in model.notify_reports(1, base, generated_at=NOW):
            assert b"a-secret-of-20-chars" not in msgspec.json.encode(message)


@pytest.mark.parametrize(("items", "size"), [(1, 65000), (10, 65000), (100, 3000)])
def test_report_is_paged_within_items_and_bytes_per_message(items: int, size: int) -> None:
    """DeviceDataCtrlr.ItemsPerMessage/BytesPerMessage[GetReport] bound each NotifyReport;
    seqNo counts from 0 and tbc is true on all but the last (B07).
    """
    model = DeviceModel()
    messages = model.notify_reports(
        1,
        ReportBaseEnum.FULL_INVENTORY,
        generated_at=NOW,
        items_per_message=items,
        bytes_per_message=size,
    )
    assert len(messages) > 1
    for message in messages:
        assert isinstance(message.report_data, list)
        assert len(message.report_data) <= items
        assert len(msgspec.json.encode(message)) <= size
    assert sum(len(m.report_data or []) for m in messages) == len(model.variable_keys())
    notify(model, ReportBaseEnum.FULL_INVENTORY, items_per_message=items, bytes_per_message=size)


def test_get_base_report_response_is_accepted() -> None:
    """B07: a supported report base -> Accepted (then the NotifyReports)."""
    request = validate_payload(
        "2.0.1", "GetBaseReport", b'{"requestId": 1, "reportBase": "FullInventory"}'
    )
    assert isinstance(request, v201.GetBaseReportRequest)
    response = DeviceModel().handle_get_base_report(request)
    validate_payload("2.0.1", "GetBaseReport", msgspec.json.encode(response), response=True)
    assert response.status is v201.GenericDeviceModelStatusEnum.ACCEPTED


def test_station_sets_read_only_values_itself() -> None:
    """The runtime updates ReadOnly values (clock, list entries) through set_actual."""
    model = DeviceModel()
    clock = VariableKey("ClockCtrlr", "DateTime")
    model.set_actual(clock, NOW.isoformat())
    (result,) = get(model, item("ClockCtrlr", "DateTime"))
    assert result.attribute_value == NOW.isoformat()
    with pytest.raises(DeviceModelError):
        model.set_actual(clock, "yesterday")
    with pytest.raises(DeviceModelError):
        model.set_actual(VariableKey("Nope", "Nope"), "1")


def test_typed_accessors_read_the_defaults() -> None:
    """The runtime reads typed values of the controllers it acts on."""
    model = DeviceModel()
    assert model.heartbeat_interval == 300
    assert model.message_timeout == 30
    assert model.message_attempts_transaction_event == 3
    assert model.message_attempt_interval_transaction_event == 60
    assert model.retry_back_off_wait_minimum == 5
    assert model.retry_back_off_random_range == 10
    assert model.retry_back_off_repeat_times == 5
    assert model.reset_retries == 3
    assert model.web_socket_ping_interval == 30
    assert model.tx_updated_interval == 60
    assert model.tx_ended_interval == 0
    assert model.tx_started_measurands == [v201.MeasurandEnum.ENERGY_ACTIVE_IMPORT_REGISTER]
    assert model.tx_ended_measurands == [v201.MeasurandEnum.ENERGY_ACTIVE_IMPORT_REGISTER]
    assert model.aligned_data_interval == 900
    assert model.aligned_data_measurands == [v201.MeasurandEnum.ENERGY_ACTIVE_IMPORT_REGISTER]
    assert model.tx_start_point == ["PowerPathClosed"]
    assert model.tx_stop_point == ["EVConnected", "Authorized"]
    assert model.ev_connection_timeout == 60
    assert model.stop_tx_on_invalid_id is True
    assert model.stop_tx_on_ev_side_disconnect is True
    assert model.authorize_remote_start is True
    assert model.local_pre_authorize is False
    assert model.local_authorize_offline is True
    assert model.allow_offline_tx_for_unknown_id is False
    assert model.offline_tx_for_unknown_id_enabled is False
    assert model.authorization_cache_enabled is True
    assert model.auth_cache_life_time == 86400
    assert model.local_auth_list_enabled is True
    assert model.local_auth_list_max_entries == 1000
    assert model.local_auth_list_items_per_message == 100
    assert model.security_profile == 0
    assert model.basic_auth_password is None


def test_snapshot_roundtrips_through_json() -> None:
    """to_dict/from_dict keep values and pending values (persisted per station)."""
    model = DeviceModel()
    set_(model, item("OCPPCommCtrlr", "HeartbeatInterval", value="77"))
    set_(model, item("OCPPCommCtrlr", "NetworkConfigurationPriority", value="2"))
    set_(model, item("SecurityCtrlr", "BasicAuthPassword", value="a-secret-of-20-chars"))
    restored = DeviceModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert restored.heartbeat_interval == 77
    assert restored.basic_auth_password == "a-secret-of-20-chars"
    assert restored.to_dict() == model.to_dict()
    restored.reboot()
    assert restored.actual(VariableKey("OCPPCommCtrlr", "NetworkConfigurationPriority")) == "2"


def test_snapshot_rejects_malformed_rows() -> None:
    """A corrupt snapshot is reported, not half-loaded."""
    with pytest.raises(DeviceModelError):
        DeviceModel.from_dict({"values": [["OCPPCommCtrlr"]]})
    row = ["OCPPCommCtrlr", None, None, None, "HeartbeatInterval", None, "Actual", "x"]
    with pytest.raises(DeviceModelError):
        DeviceModel.from_dict({"values": [row]})
    with pytest.raises(DeviceModelError):
        DeviceModel.from_dict({"values": [[["x"], None, None, None, "y", None, "Actual", "1"]]})
    with pytest.raises(DeviceModelError):
        DeviceModel.from_dict({"pending": {}})


def test_set_variables_more_items_than_allowed_is_the_csms_fault() -> None:
    """DeviceDataCtrlr.ItemsPerMessage[SetVariables]: the CSMS SHALL NOT send more."""
    key = VariableKey("DeviceDataCtrlr", "ItemsPerMessage", variable_instance="SetVariables")
    model = DeviceModel(values={key: "2"})
    set_(model, *[item("AuthCtrlr", "LocalPreAuthorize", value="true")] * 2)
    with pytest.raises(TooManyItemsError):
        set_(model, *[item("AuthCtrlr", "LocalPreAuthorize", value="true")] * 3)


def test_base_report_with_nothing_to_report_is_empty_result_set() -> None:
    """B07: a report base with no matching variables -> EmptyResultSet."""
    specs = [s for s in standard_variables() if s.key.variable not in SUMMARY_VARIABLES]
    model = DeviceModel(specs)
    request = validate_payload(
        "2.0.1", "GetBaseReport", b'{"requestId": 2, "reportBase": "SummaryInventory"}'
    )
    assert isinstance(request, v201.GetBaseReportRequest)
    response = model.handle_get_base_report(request)
    assert response.status is v201.GenericDeviceModelStatusEnum.EMPTY_RESULT_SET
    assert notify(model, ReportBaseEnum.SUMMARY_INVENTORY) == []
