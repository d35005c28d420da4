"""Variable monitoring, pure (OCPP 2.0.1 N02-N08): the SetVariableMonitoring rules, the
threshold/Delta/Periodic evaluation, the monitoring bases and the snapshot."""

from __future__ import annotations

import datetime
from typing import Any

import msgspec
import pytest

from ocppkit.messages import v201
from ocppkit.station.device_model import DeviceModel, VariableKey, standard_variables
from ocppkit.station.monitoring import (
    Monitor,
    Monitoring,
    MonitoringSnapshotError,
    Trigger,
    notify_monitoring_reports,
    reportable,
)
from tests.unit import test_layers

T0 = datetime.datetime(2026, 1, 1, 12, 0, 7, tzinfo=datetime.UTC)
M = v201.MonitorEnum
POWER = VariableKey("EVSE", "Power", evse=1)
HEARTBEAT = VariableKey("OCPPCommCtrlr", "HeartbeatInterval")
STATE = VariableKey("Connector", "AvailabilityState", evse=1, connector=1)
HARD = Monitor(
    1, POWER, M.UPPER_THRESHOLD, 22000, 3, kind=v201.EventNotificationEnum.HARD_WIRED_MONITOR
)
PRE = Monitor(2, HEARTBEAT, M.DELTA, 1, 5, kind=v201.EventNotificationEnum.PRECONFIGURED_MONITOR)


def model() -> DeviceModel:
    return DeviceModel(standard_variables([1, 1], max_power=22000))


def item(key: VariableKey, kind: M, value: float, severity: int = 4, **extra: Any) -> Any:
    component: dict[str, Any] = {"name": key.component}
    if key.evse is not None:
        component["evse"] = {"id": key.evse}
        if key.connector is not None:
            component["evse"]["connectorId"] = key.connector
    raw = {
        "component": component,
        "variable": {"name": key.variable},
        "type": kind.value,
        "value": value,
        "severity": severity,
        **extra,
    }
    return msgspec.convert(raw, v201.SetMonitoringData)


def set_one(mon: Monitoring, dm: DeviceModel, data: Any, **kw: Any) -> tuple[Any, list[Trigger]]:
    results, triggers = mon.set_monitoring([data], dm, now=T0, **kw)
    return results[0], triggers


def test_module_is_pure() -> None:
    """design.md rule 1: no I/O, no clock reads, no global random state."""
    for module in ("monitoring", "paging"):
        test_layers.test_station_core_is_pure(module)


@pytest.mark.parametrize(
    ("data", "status", "reason"),
    [
        (item(POWER, M.UPPER_THRESHOLD, 22000), "Accepted", None),  # at maxLimit: in range
        (item(POWER, M.UPPER_THRESHOLD, 22000.5), "Rejected", "OutsideVariableRange"),
        (item(POWER, M.LOWER_THRESHOLD, -1), "Rejected", "OutsideVariableRange"),
        (item(POWER, M.DELTA, 0), "Accepted", None),
        (item(POWER, M.DELTA, -0.1), "Rejected", "NegativeDelta"),
        (item(POWER, M.PERIODIC, 0), "Rejected", "IntervalNotPositive"),
        (item(POWER, M.PERIODIC_CLOCK_ALIGNED, 900), "Accepted", None),
        (item(POWER, M.DELTA, 1, severity=9), "Accepted", None),
        (item(POWER, M.DELTA, 1, severity=10), "Rejected", "SeverityOutOfRange"),
        (item(POWER, M.DELTA, 1, severity=-1), "Rejected", "SeverityOutOfRange"),
        (item(STATE, M.UPPER_THRESHOLD, 1), "UnsupportedMonitorType", "TypeNotForVariable"),
        (item(STATE, M.DELTA, 1), "Accepted", None),
        (
            item(VariableKey("SecurityCtrlr", "BasicAuthPassword"), M.DELTA, 1),
            "UnsupportedMonitorType",
            "TypeNotForVariable",
        ),  # WriteOnly: no monitoring
        (item(VariableKey("Nope", "Power"), M.DELTA, 1), "UnknownComponent", None),
        (item(VariableKey("EVSE", "Nope", evse=1), M.DELTA, 1), "UnknownVariable", None),
        (item(VariableKey("EVSE", "Power", evse=9), M.DELTA, 1), "UnknownComponent", None),
    ],
)
def test_set_monitoring_item_rules_n04(data: Any, status: str, reason: str | None) -> None:
    """N04.FR.03-06, FR.14 and the severity range 0-9: one result per item echoing its
    type, severity, component and variable (N04.FR.02)."""
    result, _ = set_one(Monitoring([HARD]), model(), data)
    assert result.status == status
    info = result.status_info
    assert (None if info is msgspec.UNSET else info.reason_code) == reason
    assert (result.type, result.severity) == (data.type, data.severity)
    assert (result.component, result.variable) == (data.component, data.variable)
    assert (result.id is not msgspec.UNSET) == (status == "Accepted")


def test_ids_duplicates_and_replacement_n04() -> None:
    """N04.FR.11: ids assigned after the factory ones; FR.10 Duplicate for the same type and
    severity on a variable, a different severity is fine; FR.12 a given id replaces; FR.13
    unknown id, FR.16 another variable, FR.18 a hard-wired id: Rejected; FR.15 a replaced
    preconfigured monitor is custom."""
    dm = model()
    mon = Monitoring([HARD, PRE])
    first, _ = set_one(mon, dm, item(HEARTBEAT, M.DELTA, 5, severity=4))
    assert first.id == 3
    dup, _ = set_one(mon, dm, item(HEARTBEAT, M.DELTA, 7, severity=4))
    assert dup.status == "Duplicate"
    other, _ = set_one(mon, dm, item(HEARTBEAT, M.DELTA, 7, severity=6))
    assert (other.status, other.id) == ("Accepted", 4)
    same, _ = set_one(mon, dm, item(HEARTBEAT, M.DELTA, 9, severity=4, id=3))
    assert (same.status, same.id) == ("Accepted", 3)
    assert mon.monitors[3].value == 9
    assert set_one(mon, dm, item(HEARTBEAT, M.DELTA, 1, id=77))[0].status == "Rejected"
    assert set_one(mon, dm, item(POWER, M.DELTA, 1, id=3))[0].status == "Rejected"
    assert set_one(mon, dm, item(POWER, M.DELTA, 1, id=1))[0].status == "Rejected"
    assert mon.monitors[1] == HARD
    replaced, _ = set_one(mon, dm, item(HEARTBEAT, M.DELTA, 2, severity=1, id=2))
    assert replaced.status == "Accepted"
    assert mon.monitors[2].kind is v201.EventNotificationEnum.CUSTOM_MONITOR


def test_capacity_and_supported_types() -> None:
    """A station holds at most ``max_monitors`` (a new one beyond is Rejected, a
    replacement is not); a type it does not implement is UnsupportedMonitorType (N04.FR.05)
    and a report criterion of only such types NotSupported (N02.FR.02)."""
    dm = model()
    mon = Monitoring([HARD], supported_types=[M.UPPER_THRESHOLD, M.DELTA], max_monitors=2)
    assert set_one(mon, dm, item(POWER, M.PERIODIC, 60))[0].status == "UnsupportedMonitorType"
    assert set_one(mon, dm, item(HEARTBEAT, M.DELTA, 1))[0].status == "Accepted"
    full, _ = set_one(mon, dm, item(HEARTBEAT, M.DELTA, 1, severity=7))
    assert (full.status, full.status_info.reason_code) == ("Rejected", "TooManyMonitors")
    assert set_one(mon, dm, item(HEARTBEAT, M.DELTA, 3, id=2))[0].status == "Accepted"
    crit = v201.MonitoringCriterionEnum
    assert mon.report(dm, [crit.PERIODIC_MONITORING])[0] == "NotSupported"
    assert mon.report(dm, [crit.THRESHOLD_MONITORING])[0] == "Accepted"


def test_upper_and_lower_thresholds_n07() -> None:
    """N07.FR.16/17: an event when the value goes above (below) the threshold, not when it
    reaches it; none while it stays beyond; cleared true when it comes back (FR.02)."""
    dm = model()
    dm.set_actual(POWER, "500")
    mon = Monitoring()
    upper, _ = set_one(mon, dm, item(POWER, M.UPPER_THRESHOLD, 1000))
    lower, _ = set_one(mon, dm, item(POWER, M.LOWER_THRESHOLD, 100, severity=5))
    seen = []
    for value in ("500", "1000", "1000.1", "2000", "1000", "100", "99.9", "50", "100"):
        for trigger in mon.observe(POWER, value, now=T0):
            event = trigger.event
            seen.append((event.variable_monitoring_id, value, event.cleared is True))
    assert seen == [
        (upper.id, "1000.1", False),
        (upper.id, "1000", True),
        (lower.id, "99.9", False),
        (lower.id, "100", True),
    ]


def test_new_threshold_is_checked_at_once_n07_fr_11_and_cleared_silently_fr_12() -> None:
    """N07.FR.11: a threshold set while the value is beyond it alerts at once; replacing a
    tripped one by one the value is within clears it. N07.FR.12: removing a tripped
    threshold sends no cleared event (and a value back inside reports nothing)."""
    dm = model()
    dm.set_actual(POWER, "5000")
    mon = Monitoring()
    first, fired = set_one(mon, dm, item(POWER, M.UPPER_THRESHOLD, 1000))
    assert [t.event.trigger for t in fired] == ["Alerting"]
    assert fired[0].event.actual_value == "5000"
    _, cleared = set_one(mon, dm, item(POWER, M.UPPER_THRESHOLD, 8000, id=first.id))
    assert [t.event.cleared for t in cleared] == [True]
    _, again = set_one(mon, dm, item(POWER, M.UPPER_THRESHOLD, 2000, id=first.id))
    assert len(again) == 1
    assert [r.status for r in mon.clear([first.id])] == ["Accepted"]
    assert mon.observe(POWER, "0", now=T0) == []


def test_delta_numeric_and_not_n07_fr_18_19() -> None:
    """N07.FR.18: a numeric Delta fires when the value moved more than the monitor's value
    from the one seen when set or last reported. N07.FR.19: a non-numeric one on any
    change, whatever its value."""
    dm = model()
    mon = Monitoring()
    numeric, _ = set_one(mon, dm, item(HEARTBEAT, M.DELTA, 10))  # reference "300"
    text, _ = set_one(mon, dm, item(STATE, M.DELTA, 50))
    fired = []
    for value in ("310", "311", "305", "321.5", "312"):
        fired += [t.event.actual_value for t in mon.observe(HEARTBEAT, value, now=T0)]
    assert fired == ["311", "321.5"]
    states = []
    for value in ("Available", "Occupied", "Occupied", "Faulted"):
        states += [
            (t.event.trigger, t.event.actual_value) for t in mon.observe(STATE, value, now=T0)
        ]
    assert states == [("Delta", "Occupied"), ("Delta", "Faulted")]
    assert numeric.id != text.id


def test_transaction_monitors_and_event_fields_n07_fr_06() -> None:
    """A ``transaction`` monitor only fires while a transaction runs where its variable is;
    the event names the component, variable, monitor id and kind (N07.FR.06), the
    transaction for an EVSE's variable, and event ids count up."""
    dm = model()
    mon = Monitoring()
    tx_only, _ = set_one(mon, dm, item(POWER, M.UPPER_THRESHOLD, 10, transaction=True))
    assert mon.observe(POWER, "50", now=T0) == []
    assert mon.observe(POWER, "0", now=T0) == []
    (trigger,) = mon.observe(POWER, "60", now=T0, tx_id="tx-1")
    event = trigger.event
    assert (event.event_id, event.transaction_id, event.timestamp) == (1, "tx-1", T0)
    assert event.component == v201.Component(name="EVSE", evse=v201.EVSE(id=1))
    assert event.variable == v201.Variable(name="Power")
    assert event.variable_monitoring_id == tx_only.id
    assert event.event_notification_type is v201.EventNotificationEnum.CUSTOM_MONITOR
    set_one(mon, dm, item(HEARTBEAT, M.DELTA, 0))
    (station_wide,) = mon.observe(HEARTBEAT, "301", now=T0, tx_id="tx-1")
    assert station_wide.event.event_id == 2
    assert station_wide.event.transaction_id is msgspec.UNSET  # not an EVSE's variable


def test_periodic_and_clock_aligned_n08() -> None:
    """N08.FR.06: Periodic every ``value`` s from when it was set; N08.FR.07:
    PeriodicClockAligned at the multiples of ``value`` s after midnight; trigger Periodic
    with the current value (N08.FR.05); next_due tells the timer."""
    dm = model()
    mon = Monitoring()
    periodic, _ = set_one(mon, dm, item(HEARTBEAT, M.PERIODIC, 600))
    aligned, _ = set_one(mon, dm, item(POWER, M.PERIODIC_CLOCK_ALIGNED, 900, severity=7))
    at = T0 + datetime.timedelta(seconds=600)  # 12:10:07
    assert mon.next_due() == at
    assert mon.periodic(at - datetime.timedelta(seconds=1), dm.actual) == []
    (tick,) = mon.periodic(at, dm.actual)
    assert (tick.event.trigger, tick.event.actual_value) == ("Periodic", "300")
    assert tick.event.variable_monitoring_id == periodic.id
    quarter = datetime.datetime(2026, 1, 1, 12, 15, tzinfo=datetime.UTC)
    assert mon.next_due() == quarter
    fired = mon.periodic(quarter, dm.actual)
    assert [t.event.variable_monitoring_id for t in fired] == [aligned.id]
    assert mon.next_due() == at + datetime.timedelta(seconds=600)
    mon.clear([periodic.id, aligned.id])
    assert mon.next_due() is None


def test_monitoring_bases_n03() -> None:
    """N03.FR.05 HardWiredOnly: only hard-wired monitors. FR.03 All: the preconfigured ones
    back, custom ones kept, a replaced preconfigured one stays replaced. FR.04
    FactoryDefault: custom ones gone, the factory set as it came."""
    dm = model()
    mon = Monitoring([HARD, PRE])
    custom, _ = set_one(mon, dm, item(HEARTBEAT, M.DELTA, 3, severity=7))
    set_one(mon, dm, item(HEARTBEAT, M.DELTA, 9, severity=1, id=PRE.id))
    base = v201.MonitoringBaseEnum
    mon.set_base(base.HARD_WIRED_ONLY, now=T0)
    assert list(mon.monitors) == [HARD.id]
    mon.set_base(base.ALL, now=T0)
    assert mon.monitors[PRE.id] == PRE
    set_one(mon, dm, item(HEARTBEAT, M.DELTA, 9, severity=1, id=PRE.id))
    custom2, _ = set_one(mon, dm, item(HEARTBEAT, M.DELTA, 3, severity=7))
    mon.set_base(base.ALL, now=T0)
    assert mon.monitors[PRE.id].value == 9 and custom2.id in mon.monitors
    mon.set_base(base.FACTORY_DEFAULT, now=T0)
    assert mon.monitors == {HARD.id: HARD, PRE.id: PRE}
    assert custom.id not in mon.monitors


def test_clear_statuses_n06() -> None:
    """N06: Accepted (FR.01), NotFound (FR.02), Rejected for a hard-wired one (FR.03); a
    preconfigured one may be cleared; one result per id (FR.05)."""
    mon = Monitoring([HARD, PRE])
    results = mon.clear([PRE.id, HARD.id, 42, PRE.id])
    assert [(r.id, r.status) for r in results] == [
        (PRE.id, "Accepted"),
        (HARD.id, "Rejected"),
        (42, "NotFound"),
        (PRE.id, "NotFound"),
    ]


def test_report_filters_n02() -> None:
    """N02.FR.11 all; FR.12-14 criteria by type; FR.08/15-17 componentVariables, absent
    parts matching any; FR.10 EmptyResultSet; data in the model's order, ids ascending."""
    dm = model()
    mon = Monitoring([HARD, PRE])
    set_one(mon, dm, item(VariableKey("EVSE", "Power", evse=2), M.PERIODIC, 60))
    status, data = mon.report(dm)
    assert status == "Accepted"
    names = [(d.component.name, d.variable.name) for d in data]
    assert names == [("OCPPCommCtrlr", "HeartbeatInterval"), ("EVSE", "Power"), ("EVSE", "Power")]
    crit = v201.MonitoringCriterionEnum
    cv = msgspec.convert({"component": {"name": "EVSE"}}, v201.ComponentVariable)
    _, evse_data = mon.report(dm, [crit.THRESHOLD_MONITORING, crit.PERIODIC_MONITORING], [cv])
    assert [[m.id for m in d.variable_monitoring] for d in evse_data] == [[1], [3]]
    assert mon.report(dm, [crit.DELTA_MONITORING], [cv]) == ("EmptyResultSet", [])


def test_reportable_by_level_n05_fr_03() -> None:
    """Only events of severity <= the level are reported (N05.FR.03, N07.FR.15)."""
    events = [
        v201.EventData(
            event_id=i,
            timestamp=T0,
            trigger=v201.EventTriggerEnum.DELTA,
            actual_value="",
            component=v201.Component(name="C"),
            variable=v201.Variable(name="V"),
            event_notification_type=v201.EventNotificationEnum.CUSTOM_MONITOR,
        )
        for i in range(3)
    ]
    triggers = [Trigger(severity, e) for severity, e in zip((0, 5, 9), events, strict=True)]
    assert [e.event_id for e in reportable(triggers, 5)] == [0, 1]
    assert reportable(triggers, -1) == []


def test_snapshot_round_trip_n07_fr_13() -> None:
    """N07.FR.13: monitors survive a restart, with tripped thresholds, Delta references and
    the id counters; monitors of variables the model no longer has are dropped."""
    dm = model()
    mon = Monitoring([HARD, PRE])
    upper, _ = set_one(mon, dm, item(POWER, M.UPPER_THRESHOLD, 10))
    delta, _ = set_one(mon, dm, item(HEARTBEAT, M.DELTA, 5, severity=2))
    mon.observe(POWER, "20", now=T0)
    mon.clear([PRE.id])
    data = msgspec.json.decode(msgspec.json.encode(mon.to_dict()))
    back = Monitoring.from_dict(data, [HARD, PRE], model=dm)
    assert back.monitors == mon.monitors and PRE.id not in back.monitors
    assert [t.event.cleared for t in back.observe(POWER, "5", now=T0)] == [True]
    assert [t.event.actual_value for t in back.observe(HEARTBEAT, "306", now=T0)] == ["306"]
    assert back.next_event_id == mon.next_event_id + 2
    assert set_one(back, dm, item(POWER, M.DELTA, 1))[0].id == delta.id + 1
    one_evse = DeviceModel(standard_variables([1], max_power=22000))
    data["monitors"].append(["EVSE", None, 2, None, "Power", None, 50, "Delta", 1, 1, False,
                             "CustomMonitor"])  # fmt: skip
    assert 50 not in Monitoring.from_dict(data, model=one_evse).monitors
    assert upper.id in Monitoring.from_dict(data, model=one_evse).monitors
    assert Monitoring.from_dict({}, [HARD]).monitors == {HARD.id: HARD}


@pytest.mark.parametrize(
    "data",
    [{"monitors": "x"}, {"monitors": [["EVSE"]]}, {"monitors": [], "tripped": [None]},
     {"monitors": [["A", None, None, None, "B", None, 1, "Bogus", 1, 1, False, "X"]]}],
)  # fmt: skip
def test_bad_snapshot_is_refused(data: dict[str, Any]) -> None:
    with pytest.raises(MonitoringSnapshotError):
        Monitoring.from_dict(data)


def test_notify_monitoring_report_pages_n02_fr_09() -> None:
    """The pages carry the requestId (N02.FR.04), seqNo 0.. (FR.09), tbc on all but the
    last, at most the items and bytes allowed."""
    dm = model()
    mon = Monitoring([HARD, PRE, Monitor(3, VariableKey("EVSE", "Power", evse=2), M.DELTA, 1, 1)])
    _, data = mon.report(dm)
    pages = notify_monitoring_reports(
        7, data, generated_at=T0, items_per_message=2, bytes_per_message=65000
    )
    assert [(p.seq_no, p.tbc, len(p.monitor)) for p in pages] == [
        (0, True, 2),
        (1, msgspec.UNSET, 1),
    ]
    assert {p.request_id for p in pages} == {7}
    tight = notify_monitoring_reports(
        7, data, generated_at=T0, items_per_message=10, bytes_per_message=300
    )
    assert len(tight) == 3
    assert all(len(msgspec.json.encode(p)) <= 300 for p in tight)
