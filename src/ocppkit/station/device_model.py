"""The OCPP 2.0.1 device model of an emulated station: Get/SetVariables, GetBase/GetReport.

Theory of operation
-------------------
A 2.0.1 station describes itself as *components* (a name, an optional instance, optionally
an EVSE and connector) holding *variables* (a name and an optional instance); each variable
has one or more *attributes* (``Actual``, ``Target``, ``MinSet``, ``MaxSet``) with a value
and a mutability, and fixed *characteristics* (data type, unit, limits, allowed values).
:func:`standard_variables` is our table of the variables a real station has for the
controllers of 2.0.1 Part 2 Appendix "Referenced Components and Variables" (the required
ones plus the optional ones the emulator acts on); each row is a :class:`VariableSpec`.
:class:`DeviceModel` holds one station's values and answers:

* GetVariables (B06): per item ``UnknownComponent`` / ``UnknownVariable`` /
  ``NotSupportedAttributeType`` (the attribute type, ``Actual`` when absent, is not there),
  ``Rejected`` for a WriteOnly attribute (its value is never read back), else ``Accepted``
  with the value, cut to ``DeviceDataCtrlr.ReportingValueSize``.
* SetVariables (B05): the same lookup errors; ``Rejected`` for a ReadOnly attribute, for a
  value longer than ``DeviceDataCtrlr.ConfigurationValueSize``, or one that fails the
  characteristics (type, minLimit/maxLimit, valuesList); ``RebootRequired`` when the
  variable only takes a new value at the next start (kept pending until :meth:`reboot`);
  else ``Accepted``.
* GetBaseReport (B07): the variables of the report base -- ``FullInventory`` all,
  ``ConfigurationInventory`` those with a writable attribute, ``SummaryInventory`` the
  availability and problem states -- as :class:`~ocppkit.messages.v201.NotifyReportRequest`
  s numbered from ``seqNo`` 0, each within ``DeviceDataCtrlr.ItemsPerMessage`` /
  ``BytesPerMessage`` for GetReport, ``tbc`` true on all but the last.
* GetReport (B08): the same pages for the requested componentVariables and/or the
  components meeting componentCriteria (:meth:`DeviceModel.get_report`); EmptyResultSet
  when nothing matches, NotSupported for a criterion no component has a variable for.

More than ``ItemsPerMessage`` items in one Get/SetVariables is the CSMS's fault (B05
/ B06: the CSMS SHALL NOT send more): :class:`TooManyItemsError` carries the CALLERROR
code to answer with. Values are wire strings. Pure: the clock is a parameter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final, Generic, TypeVar, overload

import msgspec

from ocppkit.messages import v201
from ocppkit.messages.v201 import (
    AttributeEnum,
    DataEnum,
    GetVariableStatusEnum,
    MutabilityEnum,
    ReportBaseEnum,
    SetVariableStatusEnum,
)
from ocppkit.station.paging import chunk, numbered

__all__ = [
    "CERTIFICATE_ENTRIES_MAX",
    "DISPLAY_MESSAGES_MAX",
    "SUMMARY_VARIABLES",
    "DeviceModel",
    "DeviceModelError",
    "TooManyItemsError",
    "VariableKey",
    "VariableSpec",
    "matches",
    "standard_variables",
    "wire_names",
]

ACTUAL: Final = AttributeEnum.ACTUAL
RO: Final = MutabilityEnum.READ_ONLY
RW: Final = MutabilityEnum.READ_WRITE
WO: Final = MutabilityEnum.WRITE_ONLY
#: Variables of a SummaryInventory (B07: availability and problem states of components).
SUMMARY_VARIABLES: Final = frozenset({"AvailabilityState", "Available", "Problem"})
#: The maxLimit of ``DisplayMessageCtrlr.DisplayMessages``: most messages a station keeps.
DISPLAY_MESSAGES_MAX: Final = 20
#: The default maxLimit of ``SecurityCtrlr.CertificateEntries``: most installed certificates
#: (as the 1.6 whitepaper's CertificateStoreMaxLength default here).
CERTIFICATE_ENTRIES_MAX: Final = 20
_MEASURANDS: Final = tuple(m.value for m in v201.MeasurandEnum)
_INTEGER: Final = re.compile(r"[+-]?\d{1,18}")
_T = TypeVar("_T")


class DeviceModelError(ValueError):
    """Local misuse: a bad initial value, snapshot or unknown variable given by our code."""


class TooManyItemsError(ValueError):
    """The CSMS sent more items than ``DeviceDataCtrlr.ItemsPerMessage`` allows.

    Its fault; answer the CALL with a CALLERROR ``code`` (``OccurrenceConstraintViolation``).
    """

    code = "OccurrenceConstraintViolation"


@dataclass(frozen=True)
class VariableKey:
    """Where a variable lives: component (name, instance, EVSE, connector) and variable."""

    component: str
    variable: str
    component_instance: str | None = None
    evse: int | None = None
    connector: int | None = None
    variable_instance: str | None = None


@dataclass(frozen=True)
class VariableSpec:
    """One variable: its key, characteristics, attributes with their mutability and default.

    ``attributes`` maps each supported attribute type to its default value (``None`` = no
    value yet, e.g. a clock the runtime fills). For strings ``min_limit``/``max_limit`` bound
    the length; for MemberList/SequenceList ``max_limit`` is the most items. ``reboot``: a
    new value is taken only at the next start (``RebootRequired``).
    """

    key: VariableKey
    data_type: DataEnum
    mutability: MutabilityEnum
    attributes: Mapping[AttributeEnum, str | None]
    unit: str | None = None
    min_limit: float | None = None
    max_limit: float | None = None
    values_list: tuple[str, ...] | None = None
    required: bool = True
    reboot: bool = False
    constant: bool = False
    supports_monitoring: bool = False

    def check(self, value: str) -> str | None:
        """``value`` in canonical form if the characteristics allow it, else ``None``."""
        kind = self.data_type
        if kind is DataEnum.BOOLEAN:
            lowered = value.lower()
            return lowered if lowered in ("true", "false") else None
        if kind in (DataEnum.INTEGER, DataEnum.DECIMAL):
            return self._check_number(value)
        if kind is DataEnum.DATE_TIME:
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                return None
            return value if parsed.tzinfo is not None else None
        if kind is DataEnum.OPTION_LIST:
            return value if self.values_list is None or value in self.values_list else None
        if kind in (DataEnum.MEMBER_LIST, DataEnum.SEQUENCE_LIST):
            return self._check_list(value)
        low = 0 if self.min_limit is None else self.min_limit
        high = math.inf if self.max_limit is None else self.max_limit
        return value if low <= len(value) <= high else None

    def _check_number(self, value: str) -> str | None:
        if self.data_type is DataEnum.INTEGER:
            if not _INTEGER.fullmatch(value.strip()):
                return None
            number: float = int(value)
            text = str(int(value))
        else:
            try:
                number = float(value)
            except ValueError:
                return None
            if not math.isfinite(number):
                return None
            text = value.strip()
        if self.min_limit is not None and number < self.min_limit:
            return None
        if self.max_limit is not None and number > self.max_limit:
            return None
        return text

    def _check_list(self, value: str) -> str | None:
        items = [] if value.strip() == "" else [item.strip() for item in value.split(",")]
        if any(item == "" for item in items) or len(set(items)) != len(items):
            return None
        if self.values_list is not None and any(item not in self.values_list for item in items):
            return None
        if self.min_limit is not None and len(items) < self.min_limit:
            return None
        if self.max_limit is not None and len(items) > self.max_limit:
            return None
        return ",".join(items)


def _var(
    component: str,
    name: str,
    data_type: DataEnum,
    mutability: MutabilityEnum,
    value: str | None,
    *,
    instance: str | None = None,
    evse: int | None = None,
    connector: int | None = None,
    unit: str | None = None,
    low: float | None = None,
    high: float | None = None,
    values: Sequence[str] | None = None,
    required: bool = True,
    reboot: bool = False,
    constant: bool = False,
    extra: Mapping[AttributeEnum, str | None] | None = None,
) -> VariableSpec:
    return VariableSpec(
        VariableKey(component, name, None, evse, connector, instance),
        data_type,
        mutability,
        {ACTUAL: value, **(extra or {})},
        unit=unit,
        min_limit=low,
        max_limit=high,
        values_list=None if values is None else tuple(values),
        required=required,
        reboot=reboot,
        constant=constant,
        supports_monitoring=mutability is not WO,
    )


def _seconds(
    component: str,
    name: str,
    value: int,
    *,
    instance: str | None = None,
    required: bool = True,
    mutability: MutabilityEnum = RW,
) -> VariableSpec:
    return _var(
        component,
        name,
        DataEnum.INTEGER,
        mutability,
        str(value),
        instance=instance,
        unit="s",
        low=0,
        required=required,
    )


def _int(
    component: str,
    name: str,
    value: int,
    *,
    mutability: MutabilityEnum = RW,
    instance: str | None = None,
    low: float | None = 0,
    high: float | None = None,
    required: bool = True,
) -> VariableSpec:
    return _var(
        component,
        name,
        DataEnum.INTEGER,
        mutability,
        str(value),
        instance=instance,
        low=low,
        high=high,
        required=required,
    )


def _bool(
    component: str,
    name: str,
    value: bool,
    *,
    mutability: MutabilityEnum = RW,
    required: bool = True,
    evse: int | None = None,
    connector: int | None = None,
) -> VariableSpec:
    return _var(
        component,
        name,
        DataEnum.BOOLEAN,
        mutability,
        "true" if value else "false",
        evse=evse,
        connector=connector,
        required=required,
    )


def _measurands(component: str, name: str, value: str) -> VariableSpec:
    return _var(component, name, DataEnum.MEMBER_LIST, RW, value, values=_MEASURANDS)


_AVAILABILITY: Final = ("Available", "Occupied", "Reserved", "Unavailable", "Faulted")
_TX_POINTS: Final = (
    "ParkingBayOccupancy",
    "EVConnected",
    "Authorized",
    "DataSigned",
    "PowerPathClosed",
    "EnergyTransfer",
)
_ENERGY: Final = "Energy.Active.Import.Register"


def _topology(evses: Sequence[int], max_power: float) -> list[VariableSpec]:
    """ChargingStation, EVSE and Connector components (Part 2 Appendix, "Physical")."""
    rows = [
        _var("ChargingStation", "AvailabilityState", DataEnum.OPTION_LIST, RO, "Available",
             values=_AVAILABILITY),
        _bool("ChargingStation", "Available", True, mutability=RO),
        _int("ChargingStation", "SupplyPhases", 3, mutability=RO, high=3),
    ]  # fmt: skip
    for evse_id, connectors in enumerate(evses, start=1):
        rows += [
            _var("EVSE", "AvailabilityState", DataEnum.OPTION_LIST, RO, "Available",
                 evse=evse_id, values=_AVAILABILITY),
            _bool("EVSE", "Available", True, mutability=RO, evse=evse_id),
            _var("EVSE", "Power", DataEnum.DECIMAL, RO, "0", evse=evse_id, unit="W",
                 low=0, high=max_power, extra={AttributeEnum.MAX_SET: str(max_power)}),
            _var("EVSE", "SupplyPhases", DataEnum.INTEGER, RO, "3", evse=evse_id, low=0, high=3),
        ]  # fmt: skip
        for connector_id in range(1, connectors + 1):
            e, c = evse_id, connector_id
            rows += [
                _var("Connector", "AvailabilityState", DataEnum.OPTION_LIST, RO, "Available",
                     values=_AVAILABILITY, evse=e, connector=c),
                _bool("Connector", "Available", True, mutability=RO, evse=e, connector=c),
                _var("Connector", "ConnectorType", DataEnum.STRING, RO, "cType2",
                     constant=True, high=20, evse=e, connector=c),
                _var("Connector", "SupplyPhases", DataEnum.INTEGER, RO, "3", low=0, high=3,
                     evse=e, connector=c),
            ]  # fmt: skip
    return rows


def standard_variables(
    evses: Sequence[int] = (1,),
    *,
    max_power: float = 22000.0,
    certificate_entries: int = CERTIFICATE_ENTRIES_MAX,
) -> list[VariableSpec]:
    """Our table of a station's components and variables.

    Args:
        evses: connectors per EVSE (EVSE ids 1.., connector ids 1.. within each).
        max_power: the ``EVSE.Power`` maxLimit (and MaxSet), in W.
        certificate_entries: the ``SecurityCtrlr.CertificateEntries`` maxLimit: most
            certificates the store holds (InstallCertificate beyond it: Rejected).
    """
    occ = "OCPPCommCtrlr"
    tx = "TxCtrlr"
    sampled = "SampledDataCtrlr"
    aligned = "AlignedDataCtrlr"
    auth = "AuthCtrlr"
    cache = "AuthCacheCtrlr"
    local = "LocalAuthListCtrlr"
    sec = "SecurityCtrlr"
    ddc = "DeviceDataCtrlr"
    smart = "SmartChargingCtrlr"
    res = "ReservationCtrlr"
    mon = "MonitoringCtrlr"
    dmc = "DisplayMessageCtrlr"
    rows: list[VariableSpec] = [
        # OCPPCommCtrlr
        _int(occ, "ActiveNetworkProfile", 0, mutability=RO, required=False),
        _var(occ, "FileTransferProtocols", DataEnum.MEMBER_LIST, RO, "HTTP,HTTPS",
             values=("FTP", "FTPS", "HTTP", "HTTPS", "SFTP")),
        _seconds(occ, "HeartbeatInterval", 300, required=False),
        _seconds(occ, "MessageTimeout", 30, instance="Default", mutability=RO),
        _seconds(occ, "MessageAttemptInterval", 60, instance="TransactionEvent"),
        _int(occ, "MessageAttempts", 3, instance="TransactionEvent"),
        _var(occ, "NetworkConfigurationPriority", DataEnum.SEQUENCE_LIST, RW, "0",
             values=tuple(str(slot) for slot in range(8)), reboot=True),
        _int(occ, "NetworkProfileConnectionAttempts", 3),
        _seconds(occ, "OfflineThreshold", 60),
        _bool(occ, "QueueAllMessages", False, required=False),
        _int(occ, "ResetRetries", 3),
        _seconds(occ, "RetryBackOffRandomRange", 10),
        _int(occ, "RetryBackOffRepeatTimes", 5),
        _seconds(occ, "RetryBackOffWaitMinimum", 5),
        _bool(occ, "UnlockOnEVSideDisconnect", True),
        _seconds(occ, "WebSocketPingInterval", 30),
        # TxCtrlr
        _seconds(tx, "EVConnectionTimeOut", 60),
        _int(tx, "MaxEnergyOnInvalidId", 0, required=False),
        _bool(tx, "StopTxOnEVSideDisconnect", True),
        _bool(tx, "StopTxOnInvalidId", True),
        _bool(tx, "TxBeforeAcceptedEnabled", False, required=False),
        _var(tx, "TxStartPoint", DataEnum.MEMBER_LIST, RW, "PowerPathClosed",
             values=_TX_POINTS, low=1),
        _var(tx, "TxStopPoint", DataEnum.MEMBER_LIST, RW, "EVConnected,Authorized",
             values=_TX_POINTS, low=1),
        # SampledDataCtrlr
        _bool(sampled, "Enabled", True, required=False),
        _measurands(sampled, "TxEndedMeasurands", _ENERGY),
        _seconds(sampled, "TxEndedInterval", 0),
        _measurands(sampled, "TxStartedMeasurands", _ENERGY),
        _measurands(sampled, "TxUpdatedMeasurands", _ENERGY),
        _seconds(sampled, "TxUpdatedInterval", 60),
        # AlignedDataCtrlr
        _bool(aligned, "Enabled", True, required=False),
        _measurands(aligned, "Measurands", _ENERGY),
        _seconds(aligned, "Interval", 900),
        _bool(aligned, "SendDuringIdle", False, required=False),
        _measurands(aligned, "TxEndedMeasurands", ""),
        _seconds(aligned, "TxEndedInterval", 0),
        # AuthCtrlr
        _bool(auth, "Enabled", True, required=False),
        _bool(auth, "AuthorizeRemoteStart", True),
        _bool(auth, "DisableRemoteAuthorization", False, required=False),
        _bool(auth, "LocalAuthorizeOffline", True),
        _bool(auth, "LocalPreAuthorize", False),
        _bool(auth, "OfflineTxForUnknownIdEnabled", False, required=False),
        # AuthCacheCtrlr
        _bool(cache, "Available", True, mutability=RO, required=False),
        _bool(cache, "Enabled", True, required=False),
        _seconds(cache, "LifeTime", 86400, required=False),
        _var(cache, "Policy", DataEnum.OPTION_LIST, RW, "LRU",
             values=("LRU", "LFU", "FIFO", "CUSTOM"), required=False),
        # LocalAuthListCtrlr
        _bool(local, "Available", True, mutability=RO, required=False),
        _bool(local, "Enabled", True, required=False),
        _var(local, "Entries", DataEnum.INTEGER, RO, "0", low=0, high=1000),
        _int(local, "ItemsPerMessage", 100, mutability=RO),
        _int(local, "BytesPerMessage", 32768, mutability=RO),
        # SecurityCtrlr
        _bool(sec, "AdditionalRootCertificateCheck", False, mutability=RO, required=False),
        _var(sec, "BasicAuthPassword", DataEnum.STRING, WO, None, low=16, high=40,
             required=False),
        _int(sec, "CertificateEntries", 0, mutability=RO, high=certificate_entries),
        _int(sec, "CertSigningRepeatTimes", 3, required=False),
        _seconds(sec, "CertSigningWaitMinimum", 30, required=False),
        _var(sec, "OrganizationName", DataEnum.STRING, RW, "ocppkit", high=50),
        _int(sec, "SecurityProfile", 0, mutability=RO, high=3),
        # DeviceDataCtrlr
        _int(ddc, "BytesPerMessage", 65000, mutability=RO, instance="GetReport"),
        _int(ddc, "BytesPerMessage", 65000, mutability=RO, instance="GetVariables"),
        _int(ddc, "BytesPerMessage", 65000, mutability=RO, instance="SetVariables"),
        _int(ddc, "ConfigurationValueSize", 1000, mutability=RO, required=False, high=1000),
        _int(ddc, "ItemsPerMessage", 100, mutability=RO, instance="GetReport"),
        _int(ddc, "ItemsPerMessage", 50, mutability=RO, instance="GetVariables"),
        _int(ddc, "ItemsPerMessage", 50, mutability=RO, instance="SetVariables"),
        _int(ddc, "ReportingValueSize", 2500, mutability=RO, required=False, high=2500),
        # ClockCtrlr
        _var("ClockCtrlr", "DateTime", DataEnum.DATE_TIME, RO, None),
        _var("ClockCtrlr", "TimeSource", DataEnum.SEQUENCE_LIST, RW, "Heartbeat",
             values=("Heartbeat", "NTP", "GPS", "RealTimeClock", "MobileNetwork",
                     "RadioTimeTransmitter"), low=1),
        # SmartChargingCtrlr
        _bool(smart, "Available", True, mutability=RO, required=False),
        _bool(smart, "Enabled", True, required=False),
        _int(smart, "Entries", 0, mutability=RO, instance="ChargingProfiles"),
        _var(smart, "LimitChangeSignificance", DataEnum.DECIMAL, RW, "1.0", low=0, high=100),
        _int(smart, "PeriodsPerSchedule", 24, mutability=RO),
        _int(smart, "ProfileStackLevel", 8, mutability=RO),
        _var(smart, "RateUnit", DataEnum.MEMBER_LIST, RO, "A,W", values=("A", "W")),
        # ReservationCtrlr
        _bool(res, "Available", True, mutability=RO, required=False),
        _bool(res, "Enabled", True, required=False),
        _bool(res, "NonEvseSpecific", True, mutability=RO, required=False),  # H01 built
        # MonitoringCtrlr (N02-N08; ActiveMonitoring* change only through their messages)
        _bool(mon, "Available", True, mutability=RO, required=False),
        _bool(mon, "Enabled", True, required=False),
        _int(mon, "ItemsPerMessage", 20, mutability=RO, instance="ClearVariableMonitoring"),
        _int(mon, "ItemsPerMessage", 20, mutability=RO, instance="SetVariableMonitoring"),
        _int(mon, "BytesPerMessage", 65000, mutability=RO, instance="ClearVariableMonitoring"),
        _int(mon, "BytesPerMessage", 65000, mutability=RO, instance="SetVariableMonitoring"),
        _int(mon, "OfflineQueuingSeverity", 2, high=9, required=False),
        _var(mon, "ActiveMonitoringBase", DataEnum.OPTION_LIST, RO, "All",
             values=("All", "FactoryDefault", "HardWiredOnly"), required=False),
        _int(mon, "ActiveMonitoringLevel", 9, mutability=RO, high=9, required=False),
        # DisplayMessageCtrlr (O01-O06): DisplayMessages counts the configured messages
        _bool(dmc, "Available", True, mutability=RO, required=False),
        _bool(dmc, "Enabled", True, required=False),
        _int(dmc, "DisplayMessages", 0, mutability=RO, high=DISPLAY_MESSAGES_MAX),
        _var(dmc, "SupportedFormats", DataEnum.MEMBER_LIST, RO, "ASCII,HTML,URI,UTF8",
             values=("ASCII", "HTML", "URI", "UTF8"), low=1),
        _var(dmc, "SupportedPriorities", DataEnum.MEMBER_LIST, RO,
             "AlwaysFront,InFront,NormalCycle",
             values=("AlwaysFront", "InFront", "NormalCycle"), low=1),
    ]  # fmt: skip
    return rows + _topology(evses, max_power)


_NO_PENDING: Final[Mapping[AttributeEnum, str]] = MappingProxyType({})


@dataclass(slots=True)
class _Entry:
    """One variable of one station. ``values`` is the spec's own (shared, never mutated)
    defaults until the first write copies it: a fleet of stations holds one copy of the
    table, not one per station."""

    spec: VariableSpec
    values: Mapping[AttributeEnum, str | None]
    pending: Mapping[AttributeEnum, str] = field(default_factory=lambda: _NO_PENDING)

    def set_value(self, attribute: AttributeEnum, value: str) -> None:
        values = self.values
        if values is self.spec.attributes:
            values = self.values = dict(values)
        values[attribute] = value  # type: ignore[index]

    def set_pending(self, attribute: AttributeEnum, value: str) -> None:
        if self.pending is _NO_PENDING:
            self.pending = {}
        self.pending[attribute] = value  # type: ignore[index]


class _Setting(Generic[_T]):
    """A read-only :class:`DeviceModel` attribute: one variable's Actual value, typed by
    ``read`` (which is given the model and the variable's key)."""

    __slots__ = ("key", "read")

    def __init__(self, key: VariableKey, read: Callable[[DeviceModel, VariableKey], _T]) -> None:
        self.key = key
        self.read = read

    @overload
    def __get__(self, model: None, owner: type[Any]) -> _Setting[_T]: ...
    @overload
    def __get__(self, model: DeviceModel, owner: type[Any]) -> _T: ...
    def __get__(self, model: DeviceModel | None, owner: type[Any]) -> _Setting[_T] | _T:
        return self if model is None else self.read(model, self.key)

    def __set__(self, model: DeviceModel, value: object) -> None:
        raise AttributeError(f"{self.key.variable} is read-only; use set_actual")


def _int_var(
    component: str, name: str, default: int, *, instance: str | None = None
) -> _Setting[int]:
    key = VariableKey(component, name, variable_instance=instance)
    return _Setting(key, lambda model, key: model._int(key, default))


def _bool_var(component: str, name: str, default: bool) -> _Setting[bool]:
    return _Setting(VariableKey(component, name), lambda model, key: model._bool(key, default))


def _list_var(component: str, name: str) -> _Setting[list[str]]:
    return _Setting(VariableKey(component, name), lambda model, key: model._list(key))


def _measurands_var(component: str, name: str) -> _Setting[list[v201.MeasurandEnum]]:
    return _Setting(
        VariableKey(component, name),
        lambda model, key: [v201.MeasurandEnum(m) for m in model._list(key)],
    )


def _attribute_type(item: v201.GetVariableData | v201.SetVariableData) -> AttributeEnum:
    """The attribute a Get/SetVariables item names (Actual when it names none)."""
    return ACTUAL if isinstance(item.attribute_type, msgspec.UnsetType) else item.attribute_type


def _component_key(component: v201.Component) -> tuple[str, str | None, int | None, int | None]:
    evse = None if isinstance(component.evse, msgspec.UnsetType) else component.evse
    return (
        component.name,
        None if isinstance(component.instance, msgspec.UnsetType) else component.instance,
        None if evse is None else evse.id,
        None if evse is None or isinstance(evse.connector_id, msgspec.UnsetType)
        else evse.connector_id,
    )  # fmt: skip


def _given(value: _T | msgspec.UnsetType) -> _T | None:
    return None if isinstance(value, msgspec.UnsetType) else value


def wire_names(key: VariableKey) -> tuple[v201.Component, v201.Variable]:
    """The Component and Variable a message uses to name ``key``."""
    return DeviceModel._component(key), DeviceModel._variable(key)


def matches(key: VariableKey, wanted: v201.ComponentVariable) -> bool:
    """``key`` is one of the variables ``wanted`` names: an absent component instance, EVSE,
    variable or variable instance matches any (B08, N02.FR.15-17)."""
    return _matches(key, wanted)


def _matches(key: VariableKey, wanted: v201.ComponentVariable) -> bool:
    """``key`` is one of the variables ``wanted`` names (absent fields match anything)."""
    component = wanted.component
    if key.component != component.name:
        return False
    instance = _given(component.instance)
    if instance is not None and key.component_instance != instance:
        return False
    evse = _given(component.evse)
    if evse is not None:
        connector = _given(evse.connector_id)
        if key.evse != evse.id or (connector is not None and key.connector != connector):
            return False
    variable = _given(wanted.variable)
    if variable is None:
        return True
    variable_instance = _given(variable.instance)
    return key.variable == variable.name and (
        variable_instance is None or key.variable_instance == variable_instance
    )


class DeviceModel:
    """The components, variables and attribute values of one 2.0.1 station.

    Args:
        specs: the variable table (:func:`standard_variables` by default).
        values: initial Actual values by :class:`VariableKey` (a template fixes ReadOnly
            ones too), validated against the characteristics.

    Raises:
        DeviceModelError: an unknown variable or invalid value in ``values``.
    """

    def __init__(
        self,
        specs: Iterable[VariableSpec] | None = None,
        values: Mapping[VariableKey, str] | None = None,
    ) -> None:
        rows = standard_variables() if specs is None else list(specs)
        self._entries: dict[VariableKey, _Entry] = {
            spec.key: _Entry(spec, spec.attributes) for spec in rows
        }
        self._components = {
            (k.component, k.component_instance, k.evse, k.connector) for k in self._entries
        }
        for key, value in (values or {}).items():
            self.set_actual(key, value)

    # -- lookup ---------------------------------------------------------------------------

    def _find(
        self, component: v201.Component, variable: v201.Variable
    ) -> _Entry | GetVariableStatusEnum:
        name, instance, evse, connector = _component_key(component)
        if (name, instance, evse, connector) not in self._components:
            return GetVariableStatusEnum.UNKNOWN_COMPONENT
        key = VariableKey(
            name,
            variable.name,
            instance,
            evse,
            connector,
            None if isinstance(variable.instance, msgspec.UnsetType) else variable.instance,
        )
        entry = self._entries.get(key)
        return GetVariableStatusEnum.UNKNOWN_VARIABLE if entry is None else entry

    def lookup(
        self, component: v201.Component, variable: v201.Variable
    ) -> VariableSpec | GetVariableStatusEnum:
        """The spec of the variable a message names, else ``UnknownComponent`` /
        ``UnknownVariable`` (the lookup of B05/B06, for the messages of other blocks)."""
        found = self._find(component, variable)
        return found if isinstance(found, GetVariableStatusEnum) else found.spec

    def variable_keys(self) -> list[VariableKey]:
        """Every variable of the model, in table order."""
        return list(self._entries)

    def actual(self, key: VariableKey) -> str | None:
        """The Actual value of ``key`` (WriteOnly ones too: the station knows them)."""
        entry = self._entries.get(key)
        if entry is None:
            raise DeviceModelError(f"no variable {key}")
        return entry.values.get(ACTUAL)

    def set_actual(self, key: VariableKey, value: str) -> None:
        """Set an Actual value from the station itself (ReadOnly ones too), validated.

        Raises:
            DeviceModelError: unknown variable, or the value fails its characteristics.
        """
        entry = self._entries.get(key)
        normal = None if entry is None else entry.spec.check(value)
        if entry is None or normal is None:
            raise DeviceModelError(f"invalid value for {key}")
        entry.set_value(ACTUAL, normal)

    def _check_items(self, requests: Sequence[object], message: str) -> None:
        """Raises :class:`TooManyItemsError` for more ``requests`` than
        ``DeviceDataCtrlr.ItemsPerMessage[message]``."""
        if len(requests) > self.items_per_message(message):
            raise TooManyItemsError(f"{message} exceeds DeviceDataCtrlr.ItemsPerMessage")

    # -- GetVariables (B06) ---------------------------------------------------------------

    def get_variables(
        self, requests: Sequence[v201.GetVariableData]
    ) -> list[v201.GetVariableResult]:
        """One result per request item, in order (B06).

        Raises:
            TooManyItemsError: more items than ``ItemsPerMessage[GetVariables]``.
        """
        self._check_items(requests, "GetVariables")
        limit = self._int(VariableKey("DeviceDataCtrlr", "ReportingValueSize"), 2500)
        results = []
        for item in requests:
            attribute = _attribute_type(item)
            result = v201.GetVariableResult(
                attribute_status=GetVariableStatusEnum.ACCEPTED,
                component=item.component,
                variable=item.variable,
            )
            if attribute is not ACTUAL:
                result.attribute_type = attribute
            found = self._find(item.component, item.variable)
            if isinstance(found, GetVariableStatusEnum):
                result.attribute_status = found
            elif attribute not in found.values:
                result.attribute_status = GetVariableStatusEnum.NOT_SUPPORTED_ATTRIBUTE_TYPE
            elif found.spec.mutability is WO:
                result.attribute_status = GetVariableStatusEnum.REJECTED
                result.attribute_status_info = v201.StatusInfo(reason_code="WriteOnly")
            else:
                value = found.values[attribute]
                if value is not None:
                    result.attribute_value = value[:limit]
            results.append(result)
        return results

    def handle_get_variables(self, request: v201.GetVariablesRequest) -> v201.GetVariablesResponse:
        """The reply to a GetVariables request."""
        return v201.GetVariablesResponse(
            get_variable_result=self.get_variables(request.get_variable_data)
        )

    # -- SetVariables (B05) ---------------------------------------------------------------

    def set_variables(
        self, requests: Sequence[v201.SetVariableData]
    ) -> list[v201.SetVariableResult]:
        """Apply each item in order and return one result per item (B05).

        Raises:
            TooManyItemsError: more items than ``ItemsPerMessage[SetVariables]``.
        """
        self._check_items(requests, "SetVariables")
        size = self._int(VariableKey("DeviceDataCtrlr", "ConfigurationValueSize"), 1000)
        results = []
        for item in requests:
            attribute = _attribute_type(item)
            status, reason = self._set_one(item, attribute, size)
            result = v201.SetVariableResult(
                attribute_status=status, component=item.component, variable=item.variable
            )
            if attribute is not ACTUAL:
                result.attribute_type = attribute
            if reason is not None:
                result.attribute_status_info = v201.StatusInfo(reason_code=reason)
            results.append(result)
        return results

    def _set_one(
        self, item: v201.SetVariableData, attribute: AttributeEnum, size: int
    ) -> tuple[SetVariableStatusEnum, str | None]:
        found = self._find(item.component, item.variable)
        if found is GetVariableStatusEnum.UNKNOWN_COMPONENT:
            return SetVariableStatusEnum.UNKNOWN_COMPONENT, None
        if isinstance(found, GetVariableStatusEnum):
            return SetVariableStatusEnum.UNKNOWN_VARIABLE, None
        if attribute not in found.values:
            return SetVariableStatusEnum.NOT_SUPPORTED_ATTRIBUTE_TYPE, None
        if found.spec.mutability is RO:
            return SetVariableStatusEnum.REJECTED, "ReadOnly"
        if len(item.attribute_value) > size:
            return SetVariableStatusEnum.REJECTED, "ValueTooLarge"
        normal = found.spec.check(item.attribute_value)
        if normal is None:
            return SetVariableStatusEnum.REJECTED, "InvalidValue"
        if found.spec.reboot:
            found.set_pending(attribute, normal)
            return SetVariableStatusEnum.REBOOT_REQUIRED, None
        found.set_value(attribute, normal)
        return SetVariableStatusEnum.ACCEPTED, None

    def handle_set_variables(self, request: v201.SetVariablesRequest) -> v201.SetVariablesResponse:
        """The reply to a SetVariables request."""
        return v201.SetVariablesResponse(
            set_variable_result=self.set_variables(request.set_variable_data)
        )

    def reboot(self) -> None:
        """Apply the values accepted with ``RebootRequired`` (the station restarted)."""
        for entry in self._entries.values():
            for attribute, value in entry.pending.items():
                entry.set_value(attribute, value)
            entry.pending = _NO_PENDING

    # -- GetBaseReport (B07) --------------------------------------------------------------

    def report_data(self, report_base: ReportBaseEnum) -> list[v201.ReportData]:
        """The ReportData items of ``report_base``, in table order."""
        limit = self._int(VariableKey("DeviceDataCtrlr", "ReportingValueSize"), 2500)
        items = []
        for entry in self._entries.values():
            spec = entry.spec
            if report_base is ReportBaseEnum.CONFIGURATION_INVENTORY and spec.mutability is RO:
                continue
            if (
                report_base is ReportBaseEnum.SUMMARY_INVENTORY
                and spec.key.variable not in SUMMARY_VARIABLES
            ):
                continue
            items.append(self._report_item(entry, limit))
        return items

    def _report_item(self, entry: _Entry, limit: int) -> v201.ReportData:
        spec = entry.spec
        attributes = []
        for attribute, value in entry.values.items():
            reported = v201.VariableAttribute(
                type=attribute,
                mutability=spec.mutability,
                persistent=spec.mutability is not RO or spec.constant,
                constant=spec.constant,
            )
            if value is not None and spec.mutability is not WO:
                reported.value = value[:limit]
            attributes.append(reported)
        characteristics = v201.VariableCharacteristics(
            data_type=spec.data_type, supports_monitoring=spec.supports_monitoring
        )
        if spec.unit is not None:
            characteristics.unit = spec.unit
        if spec.min_limit is not None:
            characteristics.min_limit = spec.min_limit
        if spec.max_limit is not None:
            characteristics.max_limit = spec.max_limit
        if spec.values_list is not None:
            characteristics.values_list = ",".join(spec.values_list)
        return v201.ReportData(
            component=self._component(spec.key),
            variable=self._variable(spec.key),
            variable_attribute=attributes,
            variable_characteristics=characteristics,
        )

    def notify_reports(
        self,
        request_id: int,
        report_base: ReportBaseEnum,
        *,
        generated_at: datetime,
        items_per_message: int | None = None,
        bytes_per_message: int | None = None,
    ) -> list[v201.NotifyReportRequest]:
        """The NotifyReport requests answering a GetBaseReport, in the order to send them.

        Each holds at most ``items_per_message`` items and, encoded, at most
        ``bytes_per_message`` bytes (defaults: ``DeviceDataCtrlr`` ItemsPerMessage /
        BytesPerMessage for GetReport); one item larger than that still goes alone.
        """
        return self._pages(
            request_id,
            self.report_data(report_base),
            generated_at=generated_at,
            items_per_message=items_per_message,
            bytes_per_message=bytes_per_message,
        )

    def _pages(
        self,
        request_id: int,
        items: list[v201.ReportData],
        *,
        generated_at: datetime,
        items_per_message: int | None,
        bytes_per_message: int | None,
    ) -> list[v201.NotifyReportRequest]:
        """``items`` as NotifyReport pages (seqNo from 0, ``tbc`` on all but the last)."""
        max_items = max(1, items_per_message or self.items_per_message("GetReport"))
        max_bytes = bytes_per_message or self._int(
            VariableKey("DeviceDataCtrlr", "BytesPerMessage", variable_instance="GetReport"),
            65000,
        )
        envelope = len(
            msgspec.json.encode(
                v201.NotifyReportRequest(
                    request_id=request_id, generated_at=generated_at, seq_no=0, tbc=True
                )
            )
        ) + len(',"reportData":[]') + 10  # fmt: skip
        chunks = chunk(items, max_items=max_items, max_bytes=max_bytes, envelope=envelope)
        messages = numbered(
            chunks,
            lambda seq_no, page: v201.NotifyReportRequest(
                request_id=request_id, generated_at=generated_at, seq_no=seq_no, report_data=page
            ),
        )
        if not messages:
            messages.append(
                v201.NotifyReportRequest(request_id=request_id, generated_at=generated_at, seq_no=0)
            )
        return messages

    def handle_get_base_report(
        self, request: v201.GetBaseReportRequest
    ) -> v201.GetBaseReportResponse:
        """The reply to a GetBaseReport (B07: Accepted; every base is supported)."""
        status = (
            v201.GenericDeviceModelStatusEnum.ACCEPTED
            if self.report_data(request.report_base)
            else v201.GenericDeviceModelStatusEnum.EMPTY_RESULT_SET
        )
        return v201.GetBaseReportResponse(status=status)

    # -- GetReport (B08) ------------------------------------------------------------------

    def _criterion_met(self, entry: _Entry, criterion: v201.ComponentCriterionEnum) -> bool:
        """The component of ``entry`` has the criterion's variable and it is true."""
        k = entry.spec.key
        flag = VariableKey(k.component, criterion.value, k.component_instance, k.evse, k.connector)
        return self._value(flag) == "true"

    def _evaluable(self, criterion: v201.ComponentCriterionEnum) -> bool:
        return any(key.variable == criterion.value for key in self._entries)

    def filtered_report_data(
        self,
        component_variables: Sequence[v201.ComponentVariable] = (),
        criteria: Sequence[v201.ComponentCriterionEnum] = (),
    ) -> list[v201.ReportData] | None:
        """The ReportData items of a GetReport (B08), in table order: the variables named by
        ``component_variables`` (a component without a variable: all its variables; an
        absent instance or EVSE matches any) of the components meeting any of ``criteria``
        (their ``Available``/``Enabled``/``Active``/``Problem`` variable is true). ``None``
        when a criterion cannot be evaluated (no component has that variable)."""
        if any(not self._evaluable(criterion) for criterion in criteria):
            return None
        limit = self._int(VariableKey("DeviceDataCtrlr", "ReportingValueSize"), 2500)
        items = []
        for entry in self._entries.values():
            if component_variables and not any(
                _matches(entry.spec.key, cv) for cv in component_variables
            ):
                continue
            if criteria and not any(self._criterion_met(entry, c) for c in criteria):
                continue
            items.append(self._report_item(entry, limit))
        return items

    def get_report(
        self, request: v201.GetReportRequest, *, generated_at: datetime
    ) -> tuple[v201.GetReportResponse, list[v201.NotifyReportRequest]]:
        """The reply to a GetReport (B08) and the NotifyReport pages to send after it
        (none unless Accepted): EmptyResultSet when nothing matches, NotSupported for a
        criterion the model cannot evaluate."""
        status = v201.GenericDeviceModelStatusEnum
        cvs = request.component_variable
        crit = request.component_criteria
        items = self.filtered_report_data(
            [] if isinstance(cvs, msgspec.UnsetType) else cvs,
            [] if isinstance(crit, msgspec.UnsetType) else crit,
        )
        if items is None:
            return v201.GetReportResponse(status=status.NOT_SUPPORTED), []
        if not items:
            return v201.GetReportResponse(status=status.EMPTY_RESULT_SET), []
        pages = self._pages(
            request.request_id,
            items,
            generated_at=generated_at,
            items_per_message=None,
            bytes_per_message=None,
        )
        return v201.GetReportResponse(status=status.ACCEPTED), pages

    @staticmethod
    def _component(key: VariableKey) -> v201.Component:
        component = v201.Component(name=key.component)
        if key.component_instance is not None:
            component.instance = key.component_instance
        if key.evse is not None:
            component.evse = v201.EVSE(id=key.evse)
            if key.connector is not None:
                component.evse.connector_id = key.connector
        return component

    @staticmethod
    def _variable(key: VariableKey) -> v201.Variable:
        variable = v201.Variable(name=key.variable)
        if key.variable_instance is not None:
            variable.instance = key.variable_instance
        return variable

    # -- typed accessors ------------------------------------------------------------------

    def _value(self, key: VariableKey) -> str | None:
        entry = self._entries.get(key)
        return None if entry is None else entry.values.get(ACTUAL)

    def _int(self, key: VariableKey, default: int) -> int:
        value = self._value(key)
        return default if value is None else int(value)

    def _bool(self, key: VariableKey, default: bool) -> bool:
        value = self._value(key)
        return default if value is None else value == "true"

    def _list(self, key: VariableKey) -> list[str]:
        value = self._value(key)
        return [] if not value else value.split(",")

    def items_per_message(self, instance: str) -> int:
        """``DeviceDataCtrlr.ItemsPerMessage[instance]`` (GetReport, GetVariables, SetVariables)."""
        return self._int(
            VariableKey("DeviceDataCtrlr", "ItemsPerMessage", variable_instance=instance), 50
        )

    heartbeat_interval = _int_var("OCPPCommCtrlr", "HeartbeatInterval", 300)
    """``OCPPCommCtrlr.HeartbeatInterval`` (s)."""

    message_timeout = _int_var("OCPPCommCtrlr", "MessageTimeout", 30, instance="Default")
    """``OCPPCommCtrlr.MessageTimeout[Default]`` (s)."""

    message_attempts_transaction_event = _int_var(
        "OCPPCommCtrlr", "MessageAttempts", 3, instance="TransactionEvent"
    )
    """``OCPPCommCtrlr.MessageAttempts[TransactionEvent]`` (E13)."""

    message_attempt_interval_transaction_event = _int_var(
        "OCPPCommCtrlr", "MessageAttemptInterval", 60, instance="TransactionEvent"
    )
    """``OCPPCommCtrlr.MessageAttemptInterval[TransactionEvent]`` (s, E13)."""

    retry_back_off_wait_minimum = _int_var("OCPPCommCtrlr", "RetryBackOffWaitMinimum", 5)
    """``OCPPCommCtrlr.RetryBackOffWaitMinimum`` (s, reconnect back-off, B10)."""

    retry_back_off_random_range = _int_var("OCPPCommCtrlr", "RetryBackOffRandomRange", 10)
    """``OCPPCommCtrlr.RetryBackOffRandomRange`` (s)."""

    retry_back_off_repeat_times = _int_var("OCPPCommCtrlr", "RetryBackOffRepeatTimes", 5)
    """``OCPPCommCtrlr.RetryBackOffRepeatTimes``."""

    offline_threshold = _int_var("OCPPCommCtrlr", "OfflineThreshold", 60)
    """``OCPPCommCtrlr.OfflineThreshold`` (s)."""

    reset_retries = _int_var("OCPPCommCtrlr", "ResetRetries", 3)
    """``OCPPCommCtrlr.ResetRetries``."""

    web_socket_ping_interval = _int_var("OCPPCommCtrlr", "WebSocketPingInterval", 30)
    """``OCPPCommCtrlr.WebSocketPingInterval`` (s; 0 = none)."""

    tx_updated_interval = _int_var("SampledDataCtrlr", "TxUpdatedInterval", 60)
    """``SampledDataCtrlr.TxUpdatedInterval`` (s; 0 = no periodic sampled values)."""

    tx_ended_interval = _int_var("SampledDataCtrlr", "TxEndedInterval", 0)
    """``SampledDataCtrlr.TxEndedInterval`` (s)."""

    tx_started_measurands = _measurands_var("SampledDataCtrlr", "TxStartedMeasurands")
    """``SampledDataCtrlr.TxStartedMeasurands``."""

    tx_updated_measurands = _measurands_var("SampledDataCtrlr", "TxUpdatedMeasurands")
    """``SampledDataCtrlr.TxUpdatedMeasurands``."""

    tx_ended_measurands = _measurands_var("SampledDataCtrlr", "TxEndedMeasurands")
    """``SampledDataCtrlr.TxEndedMeasurands``."""

    aligned_data_interval = _int_var("AlignedDataCtrlr", "Interval", 900)
    """``AlignedDataCtrlr.Interval`` (s from midnight; 0 = none)."""

    aligned_data_measurands = _measurands_var("AlignedDataCtrlr", "Measurands")
    """``AlignedDataCtrlr.Measurands``."""

    tx_start_point = _list_var("TxCtrlr", "TxStartPoint")
    """``TxCtrlr.TxStartPoint`` members (E01)."""

    tx_stop_point = _list_var("TxCtrlr", "TxStopPoint")
    """``TxCtrlr.TxStopPoint`` members (E06)."""

    ev_connection_timeout = _int_var("TxCtrlr", "EVConnectionTimeOut", 60)
    """``TxCtrlr.EVConnectionTimeOut`` (s)."""

    stop_tx_on_invalid_id = _bool_var("TxCtrlr", "StopTxOnInvalidId", True)
    """``TxCtrlr.StopTxOnInvalidId``."""

    stop_tx_on_ev_side_disconnect = _bool_var("TxCtrlr", "StopTxOnEVSideDisconnect", True)
    """``TxCtrlr.StopTxOnEVSideDisconnect``."""

    authorize_remote_start = _bool_var("AuthCtrlr", "AuthorizeRemoteStart", True)
    """``AuthCtrlr.AuthorizeRemoteStart`` (F01)."""

    local_pre_authorize = _bool_var("AuthCtrlr", "LocalPreAuthorize", False)
    """``AuthCtrlr.LocalPreAuthorize`` (C12, C14)."""

    local_authorize_offline = _bool_var("AuthCtrlr", "LocalAuthorizeOffline", True)
    """``AuthCtrlr.LocalAuthorizeOffline`` (C13, C10)."""

    allow_offline_tx_for_unknown_id = _bool_var("AuthCtrlr", "OfflineTxForUnknownIdEnabled", False)
    """``AuthCtrlr.OfflineTxForUnknownIdEnabled`` (C15); named as 1.6's key."""

    @property
    def offline_tx_for_unknown_id_enabled(self) -> bool:
        """Alias of :attr:`allow_offline_tx_for_unknown_id` with the 2.0.1 name."""
        return self.allow_offline_tx_for_unknown_id

    @property
    def authorization_cache_enabled(self) -> bool:
        """``AuthCacheCtrlr.Enabled`` (and ``Available``)."""
        return self._bool(VariableKey("AuthCacheCtrlr", "Enabled"), False) and self._bool(
            VariableKey("AuthCacheCtrlr", "Available"), False
        )

    @property
    def auth_cache_life_time(self) -> int | None:
        """``AuthCacheCtrlr.LifeTime`` (s), ``None`` when the station has no such variable."""
        value = self._value(VariableKey("AuthCacheCtrlr", "LifeTime"))
        return None if value is None else int(value)

    @property
    def local_auth_list_enabled(self) -> bool:
        """``LocalAuthListCtrlr.Enabled`` (and ``Available``)."""
        return self._bool(VariableKey("LocalAuthListCtrlr", "Enabled"), False) and self._bool(
            VariableKey("LocalAuthListCtrlr", "Available"), False
        )

    @property
    def local_auth_list_max_entries(self) -> int:
        """Capacity of the local list: the maxLimit of ``LocalAuthListCtrlr.Entries``."""
        entry = self._entries.get(VariableKey("LocalAuthListCtrlr", "Entries"))
        if entry is None or entry.spec.max_limit is None:
            return 0
        return int(entry.spec.max_limit)

    local_auth_list_items_per_message = _int_var("LocalAuthListCtrlr", "ItemsPerMessage", 0)
    """``LocalAuthListCtrlr.ItemsPerMessage``: most entries in one SendLocalList."""

    security_profile = _int_var("SecurityCtrlr", "SecurityProfile", 0)
    """``SecurityCtrlr.SecurityProfile``."""

    @property
    def certificate_entries_max(self) -> int | None:
        """The maxLimit of ``SecurityCtrlr.CertificateEntries`` (None: no limit)."""
        entry = self._entries.get(VariableKey("SecurityCtrlr", "CertificateEntries"))
        if entry is None or entry.spec.max_limit is None:
            return None
        return int(entry.spec.max_limit)

    additional_root_certificate_check = _bool_var(
        "SecurityCtrlr", "AdditionalRootCertificateCheck", False
    )
    """``SecurityCtrlr.AdditionalRootCertificateCheck`` (M05: one CSMS root plus a fallback;
    a new one must be signed by the old)."""

    cert_signing_wait_minimum = _int_var("SecurityCtrlr", "CertSigningWaitMinimum", 30)
    """``SecurityCtrlr.CertSigningWaitMinimum`` (s, A02.FR.17)."""

    cert_signing_repeat_times = _int_var("SecurityCtrlr", "CertSigningRepeatTimes", 3)
    """``SecurityCtrlr.CertSigningRepeatTimes`` (A02.FR.19)."""

    @property
    def basic_auth_password(self) -> str | None:
        """``SecurityCtrlr.BasicAuthPassword`` (never logged), ``None`` if unset."""
        return self._value(VariableKey("SecurityCtrlr", "BasicAuthPassword"))

    # -- snapshots ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot of every attribute value and pending value.

        Rows are ``[component, component instance, evse, connector, variable, variable
        instance, attribute type, value]``; the table itself is code, not state.
        """
        values: list[list[Any]] = []
        pending: list[list[Any]] = []
        for key, entry in self._entries.items():
            where = [
                key.component,
                key.component_instance,
                key.evse,
                key.connector,
                key.variable,
                key.variable_instance,
            ]
            for attribute, value in entry.values.items():
                if value is not None:
                    values.append([*where, attribute.value, value])
            for attribute, value in entry.pending.items():
                pending.append([*where, attribute.value, value])
        return {"values": values, "pending": pending}

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], specs: Iterable[VariableSpec] | None = None
    ) -> DeviceModel:
        """Rebuild from :meth:`to_dict` over ``specs``; rows of variables no longer in the
        table are dropped.

        Raises:
            DeviceModelError: a malformed snapshot or a value that fails its characteristics.
        """
        model = cls(specs)
        for section in ("values", "pending"):
            rows = data.get(section, [])
            if not isinstance(rows, list):
                raise DeviceModelError(f"device model snapshot: {section} must be a list")
            for row in rows:
                if not isinstance(row, list) or len(row) != 8:
                    raise DeviceModelError("device model snapshot: malformed row")
                key = VariableKey(row[0], row[4], row[1], row[2], row[3], row[5])
                try:
                    entry = model._entries.get(key)
                except TypeError as exc:  # an unhashable list/dict where a name belongs
                    raise DeviceModelError("device model snapshot: malformed row") from exc
                if entry is None:
                    continue
                try:
                    attribute = AttributeEnum(row[6])
                except ValueError as exc:
                    raise DeviceModelError("device model snapshot: bad attribute") from exc
                normal = entry.spec.check(row[7]) if isinstance(row[7], str) else None
                if normal is None or attribute not in entry.values:
                    raise DeviceModelError(f"device model snapshot: invalid value for {key}")
                if section == "values":
                    entry.set_value(attribute, normal)
                else:
                    entry.set_pending(attribute, normal)
        return model
