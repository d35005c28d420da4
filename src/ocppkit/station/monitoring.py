"""Variable monitoring of an emulated 2.0.1 station (OCPP 2.0.1 Part 2, block N, N02-N08).

Theory of operation
-------------------
A *monitor* watches one variable of the device model (:class:`Monitor`): an
``UpperThreshold`` / ``LowerThreshold`` alerts when the Actual value goes above / below its
``value`` and again, ``cleared``, when it comes back (N07.FR.02, FR.16, FR.17); a ``Delta``
fires when a numeric value moved more than ``value`` away from the one last reported (or
seen when the monitor was set), a non-numeric one on any change (N07.FR.18, FR.19); a
``Periodic`` fires every ``value`` seconds, a ``PeriodicClockAligned`` at the multiples of
``value`` seconds after midnight (N08.FR.06, FR.07). A ``transaction`` monitor only watches
while a transaction runs on its EVSE.

Monitors come three ways: *hard-wired* ones (the station's own, never changed or cleared:
N04.FR.18, N06.FR.03), *preconfigured* ones (factory defaults the CSMS may replace or
clear; a replaced one becomes custom, N04.FR.15) and *custom* ones set by the CSMS.
SetMonitoringBase (N03) brings back or drops the factory sets; ClearVariableMonitoring (N06)
removes by id; GetMonitoringReport (N02) lists them, filtered by criteria and
componentVariables.

:class:`Monitoring` holds one station's monitors and their evaluation state (which threshold
is tripped, each Delta's reference value, each periodic monitor's next time) and answers the
messages. It returns *triggers*: the EventData of a NotifyEvent and the monitor's severity;
whether they are sent (``severity <= ActiveMonitoringLevel``, N05.FR.03 / N07.FR.15) and
queued while offline (``<= OfflineQueuingSeverity``, N07.FR.04) is the caller's decision
with :func:`reportable`. The set is persisted with the station (N07.FR.13): :meth:`to_dict`.
Pure: the caller passes the time and the current values.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from ocppkit.messages import v201
from ocppkit.station.device_model import (
    DeviceModel,
    VariableKey,
    VariableSpec,
    matches,
    wire_names,
)
from ocppkit.station.meter import next_clock_aligned
from ocppkit.station.paging import chunk, numbered

__all__ = [
    "SEVERITY_MAX",
    "Monitor",
    "Monitoring",
    "MonitoringSnapshotError",
    "Trigger",
    "notify_monitoring_reports",
    "reportable",
]

M = v201.MonitorEnum
Kind = v201.EventNotificationEnum
Status = v201.SetMonitoringStatusEnum
#: Severities run from 0 (Danger) to 9 (Debug) (Part 2, "Severity levels").
SEVERITY_MAX: Final = 9
_NUMERIC: Final = frozenset({v201.DataEnum.INTEGER, v201.DataEnum.DECIMAL})
_THRESHOLDS: Final = frozenset({M.UPPER_THRESHOLD, M.LOWER_THRESHOLD})
_PERIODIC: Final = frozenset({M.PERIODIC, M.PERIODIC_CLOCK_ALIGNED})
_CRITERION_TYPES: Final = {
    v201.MonitoringCriterionEnum.THRESHOLD_MONITORING: _THRESHOLDS,
    v201.MonitoringCriterionEnum.DELTA_MONITORING: frozenset({M.DELTA}),
    v201.MonitoringCriterionEnum.PERIODIC_MONITORING: _PERIODIC,
}  # N02.FR.12-14


class MonitoringSnapshotError(ValueError):
    """Local misuse: a malformed snapshot given to :meth:`Monitoring.from_dict`."""


@dataclass(frozen=True)
class Monitor:
    """One VariableMonitoring setting: what it watches and how."""

    id: int
    key: VariableKey
    type: v201.MonitorEnum
    value: float
    severity: int
    transaction: bool = False
    kind: v201.EventNotificationEnum = Kind.CUSTOM_MONITOR

    def wire(self) -> v201.VariableMonitoring:
        """As a NotifyMonitoringReport lists it."""
        return v201.VariableMonitoring(
            id=self.id,
            transaction=self.transaction,
            value=self.value,
            type=self.type,
            severity=self.severity,
        )


@dataclass(frozen=True)
class Trigger:
    """A monitor that fired: the event to report and the severity deciding whether to."""

    severity: int
    event: v201.EventData


def reportable(triggers: Iterable[Trigger], level: int) -> list[v201.EventData]:
    """The events of ``triggers`` whose severity is at most ``level`` (N05.FR.03,
    N07.FR.15; also OfflineQueuingSeverity, N07.FR.04 / N08.FR.03)."""
    return [t.event for t in triggers if t.severity <= level]


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _result(
    item: v201.SetMonitoringData, status: v201.SetMonitoringStatusEnum, reason: str | None = None
) -> v201.SetMonitoringResult:
    result = v201.SetMonitoringResult(
        status=status,
        type=item.type,
        component=item.component,
        variable=item.variable,
        severity=item.severity,
    )
    if reason is not None:
        result.status_info = v201.StatusInfo(reason_code=reason)
    return result


def _given(value: Any) -> Any:
    return None if value is msgspec.UNSET else value


class Monitoring:
    """One station's monitors, their evaluation state and the N-block answers.

    Args:
        factory: the station's hard-wired and preconfigured monitors (their ``kind``
            says which), active from the start (as after SetMonitoringBase ``All``).
        supported_types: the monitor types this station implements (all five by default);
            others are ``UnsupportedMonitorType`` (N04.FR.05) and a report criterion
            none of whose types is supported is ``NotSupported`` (N02.FR.02).
        max_monitors: most monitors held at once; a new one beyond is ``Rejected``.
    """

    def __init__(
        self,
        factory: Sequence[Monitor] = (),
        *,
        supported_types: Iterable[v201.MonitorEnum] = tuple(M),
        max_monitors: int = 1000,
    ) -> None:
        self.factory = tuple(factory)
        self.supported_types = frozenset(supported_types)
        self.max_monitors = max_monitors
        self.monitors: dict[int, Monitor] = {m.id: m for m in self.factory}
        self.next_id = max(self.monitors, default=0) + 1
        self.next_event_id = 1
        self._tripped: set[int] = set()
        self._reference: dict[int, str] = {}
        self._due: dict[int, datetime.datetime] = {}

    # -- SetVariableMonitoring (N04) -----------------------------------------------------

    def set_monitoring(
        self,
        data: Sequence[v201.SetMonitoringData],
        model: DeviceModel,
        *,
        now: datetime.datetime,
        tx_for: Callable[[VariableKey], str | None] = lambda _key: None,
    ) -> tuple[list[v201.SetMonitoringResult], list[Trigger]]:
        """One result per item, in order (N04.FR.01/02), and the triggers the new
        thresholds cause at once (N07.FR.11: a new threshold may already be exceeded, or
        clear the alert of the one it replaces)."""
        results: list[v201.SetMonitoringResult] = []
        triggers: list[Trigger] = []
        for item in data:
            result, monitor = self._set_one(item, model)
            results.append(result)
            if monitor is None:
                continue
            value = model.actual(monitor.key)
            if monitor.type in _THRESHOLDS:
                fired = self._threshold(monitor, value, now, tx_for(monitor.key))
                triggers += [] if fired is None else [fired]
            elif monitor.type is M.DELTA and value is not None:
                self._reference[monitor.id] = value
            elif monitor.type in _PERIODIC:
                self._due[monitor.id] = self._next_time(monitor, now)
        return results, triggers

    def _set_one(
        self, item: v201.SetMonitoringData, model: DeviceModel
    ) -> tuple[v201.SetMonitoringResult, Monitor | None]:
        found = model.lookup(item.component, item.variable)
        if found is v201.GetVariableStatusEnum.UNKNOWN_COMPONENT:
            return _result(item, Status.UNKNOWN_COMPONENT), None  # N04.FR.03
        if not isinstance(found, VariableSpec):
            return _result(item, Status.UNKNOWN_VARIABLE), None  # N04.FR.04
        refusal = self._refusal(item, found)
        if refusal is not None:
            return _result(item, *refusal), None
        wanted = _given(item.id)
        if wanted is None and len(self.monitors) >= self.max_monitors:
            return _result(item, Status.REJECTED, "TooManyMonitors"), None
        monitor = Monitor(
            id=self.next_id if wanted is None else wanted,  # N04.FR.11 / FR.12
            key=found.key,
            type=item.type,
            value=float(item.value),
            severity=item.severity,
            transaction=bool(_given(item.transaction)),
        )
        old = self.monitors.get(monitor.id)
        if old is not None and old.type is not monitor.type:
            self._forget_state(monitor.id)
        if wanted is None:
            self.next_id += 1
        self.monitors[monitor.id] = monitor  # a replaced preconfigured one: custom (FR.15)
        result = _result(item, Status.ACCEPTED)
        result.id = monitor.id
        return result, monitor

    def _refusal(
        self, item: v201.SetMonitoringData, spec: VariableSpec
    ) -> tuple[v201.SetMonitoringStatusEnum, str] | None:
        kind = item.type
        numeric = spec.data_type in _NUMERIC
        if (
            not spec.supports_monitoring
            or kind not in self.supported_types
            or (kind in _THRESHOLDS and not numeric)
        ):
            return Status.UNSUPPORTED_MONITOR_TYPE, "TypeNotForVariable"  # N04.FR.05
        if not 0 <= item.severity <= SEVERITY_MAX:
            return Status.REJECTED, "SeverityOutOfRange"
        value = item.value
        if not math.isfinite(value):
            return Status.REJECTED, "InvalidValue"
        if kind is M.DELTA and value < 0:
            return Status.REJECTED, "NegativeDelta"  # N04.FR.14
        if kind in _PERIODIC and value <= 0:
            return Status.REJECTED, "IntervalNotPositive"
        if kind in _THRESHOLDS and (
            (spec.min_limit is not None and value < spec.min_limit)
            or (spec.max_limit is not None and value > spec.max_limit)
        ):
            return Status.REJECTED, "OutsideVariableRange"  # N04.FR.06
        wanted = _given(item.id)
        if wanted is not None:
            existing = self.monitors.get(wanted)
            if existing is None:
                return Status.REJECTED, "UnknownMonitorId"  # N04.FR.13
            if existing.key != spec.key:
                return Status.REJECTED, "OtherVariable"  # N04.FR.16
            if existing.kind is Kind.HARD_WIRED_MONITOR:
                return Status.REJECTED, "HardWiredMonitor"  # N04.FR.18
        for other in self.monitors.values():
            if (
                other.key == spec.key
                and other.type is kind
                and other.severity == item.severity
                and other.id != wanted
            ):
                return Status.DUPLICATE, "SameTypeAndSeverity"  # N04.FR.10
        return None

    # -- ClearVariableMonitoring (N06) / SetMonitoringBase (N03) ---------------------------

    def clear(self, ids: Sequence[int]) -> list[v201.ClearMonitoringResult]:
        """One result per id (N06.FR.05): ``Accepted`` and removed (a tripped threshold
        sends no cleared event, N07.FR.12), ``NotFound`` (N06.FR.02), ``Rejected`` for a
        hard-wired monitor (N06.FR.03)."""
        status = v201.ClearMonitoringStatusEnum
        results = []
        for monitor_id in ids:
            monitor = self.monitors.get(monitor_id)
            if monitor is None:
                results.append(v201.ClearMonitoringResult(status=status.NOT_FOUND, id=monitor_id))
            elif monitor.kind is Kind.HARD_WIRED_MONITOR:
                results.append(v201.ClearMonitoringResult(status=status.REJECTED, id=monitor_id))
            else:
                self._remove(monitor_id)
                results.append(v201.ClearMonitoringResult(status=status.ACCEPTED, id=monitor_id))
        return results

    def set_base(self, base: v201.MonitoringBaseEnum, *, now: datetime.datetime) -> None:
        """N03: ``All`` activates every preconfigured monitor and keeps the custom ones (a
        replaced preconfigured one stays as replaced, FR.03); ``FactoryDefault`` drops the
        custom ones and restores the factory set (FR.04); ``HardWiredOnly`` keeps only the
        hard-wired ones (FR.05)."""
        b = v201.MonitoringBaseEnum
        if base is not b.ALL:
            custom = [m.id for m in self.monitors.values() if m.kind is Kind.CUSTOM_MONITOR]
            for monitor_id in custom:
                self._remove(monitor_id)
        for monitor in self.factory:
            if monitor.kind is Kind.PRECONFIGURED_MONITOR and base is b.HARD_WIRED_ONLY:
                if monitor.id in self.monitors:
                    self._remove(monitor.id)
            elif monitor.id not in self.monitors:
                self.monitors[monitor.id] = monitor
                if monitor.type in _PERIODIC:
                    self._due[monitor.id] = self._next_time(monitor, now)

    def _remove(self, monitor_id: int) -> None:
        del self.monitors[monitor_id]
        self._forget_state(monitor_id)

    def _forget_state(self, monitor_id: int) -> None:
        self._tripped.discard(monitor_id)
        self._reference.pop(monitor_id, None)
        self._due.pop(monitor_id, None)

    # -- GetMonitoringReport (N02) -------------------------------------------------------

    def report(
        self,
        model: DeviceModel,
        criteria: Sequence[v201.MonitoringCriterionEnum] = (),
        component_variables: Sequence[v201.ComponentVariable] = (),
    ) -> tuple[v201.GenericDeviceModelStatusEnum, list[v201.MonitoringData]]:
        """The status of a GetMonitoringReport and its MonitoringData, one per variable in
        the device model's order: only monitors of the ``criteria`` types (N02.FR.06,
        FR.12-14) on the ``component_variables`` (absent parts match any, N02.FR.08,
        FR.15-17); both empty: all (N02.FR.11). ``NotSupported`` for a criterion of types
        this station does not implement (N02.FR.02), ``EmptyResultSet`` when none match
        (N02.FR.10)."""
        status = v201.GenericDeviceModelStatusEnum
        types: set[v201.MonitorEnum] = set()
        for criterion in criteria:
            if not _CRITERION_TYPES[criterion] & self.supported_types:
                return status.NOT_SUPPORTED, []
            types |= _CRITERION_TYPES[criterion]
        by_key: dict[VariableKey, list[Monitor]] = {}
        for monitor in self.monitors.values():
            if types and monitor.type not in types:
                continue
            if component_variables and not any(
                matches(monitor.key, cv) for cv in component_variables
            ):
                continue
            by_key.setdefault(monitor.key, []).append(monitor)
        data = []
        for key in model.variable_keys():
            monitors = by_key.get(key)
            if monitors:
                component, variable = wire_names(key)
                data.append(
                    v201.MonitoringData(
                        component=component,
                        variable=variable,
                        variable_monitoring=[m.wire() for m in sorted(monitors, key=_by_id)],
                    )
                )
        return (status.ACCEPTED if data else status.EMPTY_RESULT_SET), data

    # -- events (N07, N08) ---------------------------------------------------------------

    def watches(self, key: VariableKey) -> bool:
        """Some monitor watches ``key`` (a cheap test before :meth:`observe`)."""
        return any(m.key == key for m in self.monitors.values())

    def observe(
        self,
        key: VariableKey,
        value: str | None,
        *,
        now: datetime.datetime,
        tx_id: str | None = None,
    ) -> list[Trigger]:
        """The Actual value of ``key`` is now ``value``: the threshold and Delta monitors
        it fires. ``tx_id``: the transaction running where ``key`` is (gates the
        ``transaction`` monitors and is reported with the event)."""
        triggers = []
        for monitor in list(self.monitors.values()):
            if monitor.key != key:
                continue
            fired: Trigger | None = None
            if monitor.type in _THRESHOLDS:
                fired = self._threshold(monitor, value, now, tx_id)
            elif monitor.type is M.DELTA:
                fired = self._delta(monitor, value, now, tx_id)
            if fired is not None:
                triggers.append(fired)
        return triggers

    def _active(self, monitor: Monitor, tx_id: str | None) -> bool:
        return not monitor.transaction or tx_id is not None

    def _threshold(
        self, monitor: Monitor, value: str | None, now: datetime.datetime, tx_id: str | None
    ) -> Trigger | None:
        number = _number(value)
        if number is None or not self._active(monitor, tx_id):
            return None
        if monitor.type is M.UPPER_THRESHOLD:
            beyond = number > monitor.value  # N07.FR.16: above, not at, the threshold
        else:
            beyond = number < monitor.value  # N07.FR.17: below, not at
        was = monitor.id in self._tripped
        if beyond == was:
            return None
        if beyond:
            self._tripped.add(monitor.id)
        else:
            self._tripped.discard(monitor.id)
        return self._trigger(
            monitor, v201.EventTriggerEnum.ALERTING, value, now, tx_id, cleared=not beyond
        )  # N07.FR.02: back within the threshold is reported cleared

    def _delta(
        self, monitor: Monitor, value: str | None, now: datetime.datetime, tx_id: str | None
    ) -> Trigger | None:
        if value is None or not self._active(monitor, tx_id):
            return None
        reference = self._reference.get(monitor.id)
        if reference is None:
            self._reference[monitor.id] = value
            return None
        new, old = _number(value), _number(reference)
        if new is not None and old is not None:
            fired = abs(new - old) > monitor.value  # N07.FR.18
        else:
            fired = value != reference  # N07.FR.19: any change of a non-numeric value
        if not fired:
            return None
        self._reference[monitor.id] = value
        return self._trigger(monitor, v201.EventTriggerEnum.DELTA, value, now, tx_id)

    def periodic(
        self,
        now: datetime.datetime,
        value_of: Callable[[VariableKey], str | None],
        tx_for: Callable[[VariableKey], str | None] = lambda _key: None,
    ) -> list[Trigger]:
        """The Periodic / PeriodicClockAligned monitors due by ``now`` (N08.FR.06/07), each
        rescheduled; a ``transaction`` one outside a transaction reschedules silently."""
        triggers = []
        for monitor_id, due in list(self._due.items()):
            if due > now:
                continue
            monitor = self.monitors[monitor_id]
            self._due[monitor_id] = self._next_time(monitor, now)
            tx_id = tx_for(monitor.key)
            if self._active(monitor, tx_id):
                triggers.append(
                    self._trigger(
                        monitor, v201.EventTriggerEnum.PERIODIC, value_of(monitor.key), now, tx_id
                    )
                )
        return triggers

    def next_due(self) -> datetime.datetime | None:
        """When the next periodic monitor is due (None: no periodic monitor)."""
        return min(self._due.values(), default=None)

    def start_periodic(self, now: datetime.datetime) -> None:
        """Schedule the periodic monitors that have no time yet (after a restart)."""
        for monitor in self.monitors.values():
            if monitor.type in _PERIODIC and monitor.id not in self._due:
                self._due[monitor.id] = self._next_time(monitor, now)

    @staticmethod
    def _next_time(monitor: Monitor, now: datetime.datetime) -> datetime.datetime:
        if monitor.type is M.PERIODIC_CLOCK_ALIGNED:
            return next_clock_aligned(now, monitor.value)
        return now + datetime.timedelta(seconds=monitor.value)

    def _trigger(
        self,
        monitor: Monitor,
        trigger: v201.EventTriggerEnum,
        value: str | None,
        now: datetime.datetime,
        tx_id: str | None,
        *,
        cleared: bool = False,
    ) -> Trigger:
        component, variable = wire_names(monitor.key)
        event = v201.EventData(
            event_id=self.next_event_id,
            timestamp=now,
            trigger=trigger,
            actual_value=(value or "")[:2500],  # N07.FR.10: empty for a WriteOnly one
            component=component,
            variable=variable,
            variable_monitoring_id=monitor.id,  # N07.FR.06
            event_notification_type=monitor.kind,
        )
        self.next_event_id += 1
        if cleared:
            event.cleared = True
        if tx_id is not None and monitor.key.evse is not None:
            event.transaction_id = tx_id
        return Trigger(monitor.severity, event)

    # -- snapshots -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: the active monitors and the evaluation state worth keeping
        across a restart (tripped thresholds, Delta references, the id counters)."""
        return {
            "monitors": [_monitor_row(m) for m in self.monitors.values()],
            "tripped": sorted(self._tripped),
            "reference": {str(k): v for k, v in self._reference.items()},
            "next_id": self.next_id,
            "next_event_id": self.next_event_id,
        }

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        factory: Sequence[Monitor] = (),
        *,
        model: DeviceModel | None = None,
        **options: Any,
    ) -> Monitoring:
        """Rebuild from :meth:`to_dict` (an empty ``data``: the factory set). Monitors of
        variables ``model`` no longer has are dropped (N04: settings survive a restart or
        update only while their variable exists).

        Raises:
            MonitoringSnapshotError: malformed data.
        """
        result = cls(factory, **options)
        if not data:
            return result
        rows = data.get("monitors", [])
        if not isinstance(rows, list):
            raise MonitoringSnapshotError("monitoring snapshot: monitors must be a list")
        keys = None if model is None else set(model.variable_keys())
        result.monitors = {}
        try:
            for row in rows:
                key = VariableKey(row[0], row[4], row[1], row[2], row[3], row[5])
                monitor = Monitor(
                    id=int(row[6]),
                    key=key,
                    type=M(row[7]),
                    value=float(row[8]),
                    severity=int(row[9]),
                    transaction=bool(row[10]),
                    kind=Kind(row[11]),
                )
                if keys is None or key in keys:
                    result.monitors[monitor.id] = monitor
            result._tripped = {int(i) for i in data.get("tripped", [])} & set(result.monitors)
            result._reference = {
                int(k): str(v)
                for k, v in dict(data.get("reference", {})).items()
                if int(k) in result.monitors
            }
            result.next_id = max(int(data.get("next_id", 1)), max(result.monitors, default=0) + 1)
            result.next_event_id = int(data.get("next_event_id", 1))
        except (TypeError, ValueError, IndexError, KeyError) as exc:
            raise MonitoringSnapshotError(f"monitoring snapshot: {exc}") from exc
        return result


def _by_id(monitor: Monitor) -> int:
    return monitor.id


def _monitor_row(m: Monitor) -> list[Any]:
    """``[component, component instance, evse, connector, variable, variable instance, id,
    type, value, severity, transaction, kind]``."""
    k = m.key
    where = [k.component, k.component_instance, k.evse, k.connector, k.variable,
             k.variable_instance]  # fmt: skip
    return [*where, m.id, m.type.value, m.value, m.severity, m.transaction, m.kind.value]


def notify_monitoring_reports(
    request_id: int,
    data: Sequence[v201.MonitoringData],
    *,
    generated_at: datetime.datetime,
    items_per_message: int,
    bytes_per_message: int,
) -> list[v201.NotifyMonitoringReportRequest]:
    """``data`` as NotifyMonitoringReport messages: the request's requestId (N02.FR.04),
    seqNo from 0 (N02.FR.09), ``tbc`` on all but the last."""
    envelope = len(
        msgspec.json.encode(
            v201.NotifyMonitoringReportRequest(
                request_id=request_id, seq_no=0, generated_at=generated_at, tbc=True
            )
        )
    ) + len(',"monitor":[]')
    pages = chunk(data, max_items=items_per_message, max_bytes=bytes_per_message, envelope=envelope)
    return numbered(
        pages,
        lambda seq_no, page: v201.NotifyMonitoringReportRequest(
            request_id=request_id, seq_no=seq_no, generated_at=generated_at, monitor=page
        ),
    )
