"""OCPP 2.0.1 station against an independent CSMS (mobilityhouse ``ocpp``): variable
monitoring (N02-N08) and CustomerInformation (N09, N10). Test names cite the use case."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from ocpp.exceptions import OCPPError
from ocpp.v201 import call as c201

from ocppkit.messages import v201
from ocppkit.station.device_model import VariableKey
from ocppkit.station.station import Station, StationConfig
from ocppkit.station.store import StationStore
from tests.station.peers import Recorder, drained, online, running, their_csms, with_their_csms

SID = "EMU201M"
TOKEN = {"id_token": "RFID-M", "type": "ISO14443"}
POWER_1 = {"component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "Power"}}
HEARTBEAT = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}


def _item(where: dict[str, Any], kind: str, value: float, severity: int, **extra: Any) -> dict:
    return {**where, "type": kind, "value": value, "severity": severity, **extra}


def _evse_state(evse: int) -> dict[str, Any]:
    return {
        "component": {"name": "EVSE", "evse": {"id": evse}},
        "variable": {"name": "AvailabilityState"},
    }


def _connector_state(evse: int) -> dict[str, Any]:
    return {
        "component": {"name": "Connector", "evse": {"id": evse, "connector_id": 1}},
        "variable": {"name": "AvailabilityState"},
    }


@pytest.fixture
async def peer(store: StationStore) -> AsyncIterator[tuple[Station, Recorder, Any]]:
    async with with_their_csms(store, SID, "2.0.1", statuses=2) as peer:
        yield peer


async def call(point: Any, payload: Any) -> Any:
    return await point.call(payload, suppress=False)


async def set_monitors(point: Any, *items: dict[str, Any]) -> list[dict[str, Any]]:
    reply = await call(point, c201.SetVariableMonitoring(set_monitoring_data=list(items)))
    return list(reply.set_monitoring_result)


def events(rec: Recorder) -> list[dict[str, Any]]:
    return [e for call in rec.of("NotifyEvent") for e in call["event_data"]]


def of_monitor(rec: Recorder, monitor_id: int) -> list[dict[str, Any]]:
    return [e for e in events(rec) if e.get("variable_monitoring_id") == monitor_id]


async def test_set_variable_monitoring_statuses_n04(peer: tuple[Station, Recorder, Any]) -> None:
    """N04: one result per item with its component/variable (FR.01/02); UnknownComponent
    (FR.03), UnknownVariable (FR.04), UnsupportedMonitorType for a threshold on a
    non-numeric variable (FR.05), Rejected beyond the variable's range (FR.06), for a
    negative Delta (FR.14), an unknown id (FR.13), a hard-wired monitor's id (FR.18) and an
    id of another variable (FR.16); Duplicate for the same type and severity (FR.10); the
    station assigns an id when none is given (FR.11) and replaces the monitor of a given id
    (FR.12)."""
    _station, _rec, point = peer
    results = await set_monitors(
        point,
        _item(POWER_1, "UpperThreshold", 5000, 4),
        _item({**POWER_1, "component": {"name": "NoSuchCtrlr"}}, "Delta", 1, 4),
        _item({**POWER_1, "variable": {"name": "NoSuchVariable"}}, "Delta", 1, 4),
        _item(_connector_state(1), "UpperThreshold", 1, 4),
        _item(POWER_1, "LowerThreshold", 10**9, 4),
        _item(POWER_1, "Delta", -5, 4),
        _item(POWER_1, "UpperThreshold", 6000, 4),
        _item(POWER_1, "Delta", 100, 4, id=999),
        _item(POWER_1, "UpperThreshold", 100, 8, id=1),
    )
    assert [r["status"] for r in results] == [
        "Accepted",
        "UnknownComponent",
        "UnknownVariable",
        "UnsupportedMonitorType",
        "Rejected",
        "Rejected",
        "Duplicate",
        "Rejected",
        "Rejected",
    ]
    assert [r["component"]["name"] for r in results[:2]] == ["EVSE", "NoSuchCtrlr"]
    assert results[2]["variable"]["name"] == "NoSuchVariable"
    new_id = results[0]["id"]
    assert new_id > 3  # after the factory monitors (hard-wired 1-2, preconfigured 3)

    again = await set_monitors(
        point,
        _item(POWER_1, "UpperThreshold", 7000, 4, id=new_id),
        _item(HEARTBEAT, "Delta", 10, 4, id=new_id),
    )
    assert [r["status"] for r in again] == ["Accepted", "Rejected"]
    assert again[0]["id"] == new_id
    reply = await call(
        point,
        c201.GetMonitoringReport(request_id=1, component_variable=[POWER_1]),
    )
    assert reply.status == "Accepted"


async def test_too_many_items_is_a_callerror_n04_fr_09_n06_fr_06(
    peer: tuple[Station, Recorder, Any],
) -> None:
    """N04.FR.09 / N06.FR.06: more items than MonitoringCtrlr.ItemsPerMessage is answered
    with CALLERROR OccurrenceConstraintViolation."""
    _station, _rec, point = peer
    items = [_item(HEARTBEAT, "Delta", n, 1) for n in range(21)]
    with pytest.raises(OCPPError) as raised:
        await call(point, c201.SetVariableMonitoring(set_monitoring_data=items))
    assert raised.value.code == "OccurrenceConstraintViolation"
    with pytest.raises(OCPPError) as raised:
        await call(point, c201.ClearVariableMonitoring(id=list(range(100, 121))))
    assert raised.value.code == "OccurrenceConstraintViolation"


async def report_ids(rec: Recorder, point: Any, request_id: int, **filters: Any) -> list[int]:
    reply = await call(point, c201.GetMonitoringReport(request_id=request_id, **filters))
    if reply.status != "Accepted":
        return []
    await rec.wait_for(
        lambda r: any(
            p["request_id"] == request_id and not p.get("tbc")
            for p in r.of("NotifyMonitoringReport")
        )
    )
    pages = [p for p in rec.of("NotifyMonitoringReport") if p["request_id"] == request_id]
    return sorted(m["id"] for p in pages for d in p["monitor"] for m in d["variable_monitoring"])


async def test_clear_base_and_level_n03_n05_n06(peer: tuple[Station, Recorder, Any]) -> None:
    """N06: Accepted for a custom monitor, Rejected for a hard-wired one (FR.03), NotFound
    for an unknown id (FR.02), one result per id (FR.05). N05: severity 10 Rejected (FR.02),
    3 Accepted and shown in ActiveMonitoringLevel (FR.01). N03: HardWiredOnly keeps only the
    hard-wired monitors (FR.05), FactoryDefault restores the factory set without custom
    ones (FR.04), All keeps the custom ones (FR.03)."""
    _station, rec, point = peer
    first, second = await set_monitors(
        point, _item(HEARTBEAT, "Delta", 10, 4), _item(HEARTBEAT, "Delta", 10, 5)
    )
    cleared = await call(point, c201.ClearVariableMonitoring(id=[first["id"], 1, 999]))
    assert [(r["id"], r["status"]) for r in cleared.clear_monitoring_result] == [
        (first["id"], "Accepted"),
        (1, "Rejected"),
        (999, "NotFound"),
    ]
    assert (await call(point, c201.SetMonitoringLevel(severity=10))).status == "Rejected"
    assert (await call(point, c201.SetMonitoringLevel(severity=3))).status == "Accepted"
    got = await call(
        point,
        c201.GetVariables(
            get_variable_data=[
                {"component": {"name": "MonitoringCtrlr"}, "variable": {"name": name}}
                for name in ("ActiveMonitoringLevel", "ActiveMonitoringBase")
            ]
        ),
    )
    assert [r["attribute_value"] for r in got.get_variable_result] == ["3", "All"]

    assert await report_ids(rec, point, 11) == [1, 2, 3, second["id"]]
    base = await call(point, c201.SetMonitoringBase(monitoring_base="HardWiredOnly"))
    assert base.status == "Accepted"
    assert await report_ids(rec, point, 12) == [1, 2]
    await call(point, c201.SetMonitoringBase(monitoring_base="All"))
    kept = (await set_monitors(point, _item(HEARTBEAT, "Delta", 10, 6)))[0]["id"]
    assert await report_ids(rec, point, 13) == [1, 2, 3, kept]
    await call(point, c201.SetMonitoringBase(monitoring_base="FactoryDefault"))
    assert await report_ids(rec, point, 14) == [1, 2, 3]


async def test_get_monitoring_report_filters_and_pages_n02(
    peer: tuple[Station, Recorder, Any],
) -> None:
    """N02: without filters every monitor (FR.11), in NotifyMonitoringReport pages of
    DeviceDataCtrlr.ItemsPerMessage[GetReport] variables with the requestId (FR.04), seqNo
    from 0 (FR.09) and tbc on all but the last; monitoringCriteria limit the types (FR.06,
    FR.12-14), componentVariable the variables, an absent EVSE matching every EVSE (FR.15);
    nothing matching is EmptyResultSet (FR.10)."""
    station, rec, point = peer
    delta, periodic = await set_monitors(
        point, _item(HEARTBEAT, "Delta", 10, 4), _item(POWER_1, "Periodic", 3600, 7)
    )
    dm = station.behaviour.dm  # type: ignore[attr-defined]
    dm.set_actual(
        VariableKey("DeviceDataCtrlr", "ItemsPerMessage", variable_instance="GetReport"), "1"
    )
    reply = await call(point, c201.GetMonitoringReport(request_id=21))
    assert reply.status == "Accepted"
    # variables: HeartbeatInterval, ChargingStation.AvailabilityState, EVSE 1 and 2 Power
    await rec.wait_count("NotifyMonitoringReport", 4)
    pages = rec.of("NotifyMonitoringReport")
    assert [p["seq_no"] for p in pages] == [0, 1, 2, 3]
    assert [p.get("tbc", False) for p in pages] == [True, True, True, False]
    assert all(p["request_id"] == 21 and len(p["monitor"]) == 1 for p in pages)
    evse_1 = next(p["monitor"][0] for p in pages if p["monitor"][0]["component"].get("evse"))
    assert sorted(m["type"] for m in evse_1["variable_monitoring"]) == [
        "Periodic",
        "UpperThreshold",
    ]

    assert await report_ids(rec, point, 22, monitoring_criteria=["DeltaMonitoring"]) == [
        3,
        delta["id"],
    ]
    assert await report_ids(rec, point, 23, monitoring_criteria=["PeriodicMonitoring"]) == [
        periodic["id"]
    ]
    every_evse = {"component": {"name": "EVSE"}, "variable": {"name": "Power"}}
    assert await report_ids(
        rec, point, 24, component_variable=[every_evse], monitoring_criteria=["ThresholdMonitoring"]
    ) == [1, 2]
    empty = await call(
        point,
        c201.GetMonitoringReport(
            request_id=25,
            component_variable=[HEARTBEAT],
            monitoring_criteria=["ThresholdMonitoring"],
        ),
    )
    assert empty.status == "EmptyResultSet"


async def test_threshold_delta_and_level_events_n07_n05(
    peer: tuple[Station, Recorder, Any],
) -> None:
    """N07: a transaction's power above an UpperThreshold sends NotifyEvent (seqNo 0,
    FR.07) with trigger Alerting, the monitor id, component and variable (FR.06) and the
    transaction (FR.16); back below it, the event again with cleared true (FR.02). A Delta
    monitor on a connector's AvailabilityState reports each change (FR.19). After
    SetMonitoringLevel 5 a severity-6 monitor is silent while a severity-2 one on the same
    change still reports (N05.FR.03, N07.FR.15)."""
    station, rec, point = peer
    upper, connector, evse = await set_monitors(
        point,
        _item(POWER_1, "UpperThreshold", 1000, 4),
        _item(_connector_state(1), "Delta", 1, 6),
        _item(_evse_state(1), "Delta", 1, 2),
    )
    upper_id, connector_id, evse_id = upper["id"], connector["id"], evse["id"]
    await station.start_transaction(1, TOKEN["id_token"])
    await rec.wait_for(lambda r: len(of_monitor(r, upper_id)) >= 1)
    alert = of_monitor(rec, upper_id)[0]
    assert alert["trigger"] == "Alerting" and "cleared" not in alert
    assert float(alert["actual_value"]) > 1000
    assert alert["component"] == {"name": "EVSE", "evse": {"id": 1}}
    assert alert["variable"] == {"name": "Power"}
    assert alert["event_notification_type"] == "CustomMonitor"
    tx_ids = {e["transaction_info"]["transaction_id"] for e in rec.of("TransactionEvent")}
    assert alert["transaction_id"] in tx_ids
    assert all(n["seq_no"] == 0 for n in rec.of("NotifyEvent"))
    occupied = of_monitor(rec, connector_id)
    assert [(e["trigger"], e["actual_value"]) for e in occupied] == [("Delta", "Occupied")]

    assert (await call(point, c201.SetMonitoringLevel(severity=5))).status == "Accepted"
    await station.stop_transaction(1)
    await station.unplug(1)
    await rec.wait_for(lambda r: len(of_monitor(r, upper_id)) >= 2)
    cleared = of_monitor(rec, upper_id)[1]
    assert cleared["trigger"] == "Alerting" and cleared["cleared"] is True
    assert float(cleared["actual_value"]) <= 1000
    await rec.wait_for(lambda r: of_monitor(r, evse_id)[-1]["actual_value"] == "Available")
    assert [e["actual_value"] for e in of_monitor(rec, connector_id)] == ["Occupied"]
    ids = [e["event_id"] for e in events(rec)]
    assert len(set(ids)) == len(ids)


async def test_delta_on_set_variables_and_periodic_n07_n08(
    peer: tuple[Station, Recorder, Any],
) -> None:
    """N07.FR.18: a numeric Delta fires when SetVariables moves the value by more than the
    monitor's value since the last report, not for a smaller change. N08.FR.06: a Periodic
    monitor reports the value every monitorValue seconds (trigger Periodic, FR.05) until it
    is cleared."""
    _station, rec, point = peer
    (delta,) = await set_monitors(point, _item(HEARTBEAT, "Delta", 10, 1))

    async def heartbeat(value: str) -> None:
        reply = await call(
            point,
            c201.SetVariables(set_variable_data=[{**HEARTBEAT, "attribute_value": value}]),
        )
        assert reply.set_variable_result[0]["attribute_status"] == "Accepted"

    await heartbeat("305")
    await heartbeat("400")
    await rec.wait_for(lambda r: len(of_monitor(r, delta["id"])) >= 1)
    await heartbeat("395")
    (periodic,) = await set_monitors(point, _item(HEARTBEAT, "Periodic", 1, 3))
    await rec.wait_for(lambda r: len(of_monitor(r, periodic["id"])) >= 2, timeout=6)
    reported = of_monitor(rec, delta["id"])
    assert [(e["trigger"], e["actual_value"]) for e in reported] == [("Delta", "400")]
    ticks = of_monitor(rec, periodic["id"])
    assert all(e["trigger"] == "Periodic" and e["actual_value"] == "395" for e in ticks)
    cleared = await call(point, c201.ClearVariableMonitoring(id=[periodic["id"]]))
    assert cleared.clear_monitoring_result[0]["status"] == "Accepted"
    count = len(of_monitor(rec, periodic["id"]))
    await asyncio.sleep(1.5)
    assert len(of_monitor(rec, periodic["id"])) == count


async def test_monitors_survive_a_restart_n07_fr_13(store: StationStore) -> None:
    """N07.FR.13 / N04: custom monitors, the monitoring level and base are kept with the
    station state: a new Station on the same store reports the same monitors and level."""
    async with their_csms() as (port, rec):
        cfg = StationConfig(
            station_id="EMU201-MR",
            csms_url=f"ws://127.0.0.1:{port}/ocpp",
            ocpp_version="2.0.1",
            connectors=2,
        )
        async with running(cfg, store) as station:
            await online(station)
            point = rec.points["EMU201-MR"]
            (kept,) = await set_monitors(point, _item(HEARTBEAT, "Delta", 10, 4))
            await call(point, c201.SetMonitoringLevel(severity=4))
            await call(point, c201.ClearVariableMonitoring(id=[3]))  # the preconfigured one
        async with running(cfg, store) as again:
            await online(again)
            point = rec.points["EMU201-MR"]
            assert await report_ids(rec, point, 31) == [1, 2, kept["id"]]
            level = await call(
                point,
                c201.GetVariables(
                    get_variable_data=[
                        {
                            "component": {"name": "MonitoringCtrlr"},
                            "variable": {"name": "ActiveMonitoringLevel"},
                        }
                    ]
                ),
            )
            assert level.get_variable_result[0]["attribute_value"] == "4"
            (fresh,) = await set_monitors(point, _item(HEARTBEAT, "Delta", 20, 5))
            assert fresh["id"] > kept["id"]


async def test_customer_information_n09_n10(peer: tuple[Station, Recorder, Any]) -> None:
    """N09/N10: neither report nor clear is Rejected (N09.FR.07, N10.FR.07); no customer
    reference, or two, is Invalid (N09.FR.04); an idToken the station knows (local list,
    cache, running transaction) is Accepted and reported in NotifyCustomerInformation
    (N09.FR.05); an unknown customer reports no data (N09.FR.06); clear removes the cache
    entry but keeps the local list (N10.FR.03)."""
    station, rec, point = peer
    sent = await call(
        point,
        c201.SendLocalList(
            version_number=2,
            update_type="Full",
            local_authorization_list=[{"id_token": TOKEN, "id_token_info": {"status": "Accepted"}}],
        ),
    )
    assert sent.status == "Accepted"
    await station.start_transaction(1, TOKEN["id_token"])
    auth = station.behaviour.auth
    token = v201.IdToken(id_token=TOKEN["id_token"], type=v201.IdTokenEnum.ISO14443)
    assert auth.cache.peek(token) is not None

    nothing = await call(
        point, c201.CustomerInformation(request_id=1, report=False, clear=False, id_token=TOKEN)
    )
    assert nothing.status == "Rejected"
    nobody = await call(point, c201.CustomerInformation(request_id=2, report=True, clear=False))
    assert nobody.status == "Invalid"
    both = await call(
        point,
        c201.CustomerInformation(
            request_id=3, report=True, clear=False, id_token=TOKEN, customer_identifier="C-1"
        ),
    )
    assert both.status == "Invalid"

    reply = await call(
        point, c201.CustomerInformation(request_id=4, report=True, clear=False, id_token=TOKEN)
    )
    assert reply.status == "Accepted"
    await rec.wait_for(
        lambda r: any(n["request_id"] == 4 for n in r.of("NotifyCustomerInformation"))
    )
    (report,) = [n for n in rec.of("NotifyCustomerInformation") if n["request_id"] == 4]
    assert report["seq_no"] == 0 and "tbc" not in report
    assert "local authorization list: Accepted" in report["data"]
    assert "authorization cache: Accepted" in report["data"]
    tx_id = rec.of("TransactionEvent")[0]["transaction_info"]["transaction_id"]
    assert f"transaction {tx_id} on EVSE 1" in report["data"]

    unknown = await call(
        point,
        c201.CustomerInformation(
            request_id=5, report=True, clear=False, customer_identifier="C-404"
        ),
    )
    assert unknown.status == "Accepted"
    await rec.wait_for(
        lambda r: any(n["request_id"] == 5 for n in r.of("NotifyCustomerInformation"))
    )
    (none,) = [n for n in rec.of("NotifyCustomerInformation") if n["request_id"] == 5]
    assert none["data"] == "customerIdentifier C-404: no data found"

    wipe = await call(
        point, c201.CustomerInformation(request_id=6, report=False, clear=True, id_token=TOKEN)
    )
    assert wipe.status == "Accepted"
    await rec.wait_for(
        lambda r: any(n["request_id"] == 6 for n in r.of("NotifyCustomerInformation"))
    )
    (gone,) = [n for n in rec.of("NotifyCustomerInformation") if n["request_id"] == 6]
    assert "authorization cache entry cleared" in gone["data"]
    assert auth.cache.peek(token) is None
    assert auth.local_list.get(token) is not None


async def test_offline_events_queued_by_severity_n07_fr_04(store: StationStore) -> None:
    """N07.FR.04: offline, an event whose severity is within OfflineQueuingSeverity (2) is
    queued -- persistently, with the station state -- and delivered at the next connection;
    one above it is not kept."""
    async with their_csms() as (port, rec):
        cfg = StationConfig(
            station_id="EMU201-OQ",
            csms_url=f"ws://127.0.0.1:{port}/ocpp",
            ocpp_version="2.0.1",
            connectors=1,
        )
        offline = Station(cfg, store=store)
        behaviour: Any = offline.behaviour
        data = [
            v201.SetMonitoringData(
                component=v201.Component(name=name, evse=v201.EVSE(id=1, connector_id=conn)),
                variable=v201.Variable(name="AvailabilityState"),
                type=v201.MonitorEnum.DELTA,
                value=1,
                severity=severity,
            )
            for name, conn, severity in (("EVSE", msgspec.UNSET, 1), ("Connector", 1, 8))
        ]
        results, _ = behaviour.monitoring.set_monitoring(data, behaviour.dm, now=offline.now())
        kept_id, dropped_id = (r.id for r in results)
        await offline.plug(1)
        await offline.wait_for_state(lambda s: s["queued"] == 1, 5)
        (queued,) = await store.pending("EMU201-OQ")
        assert queued.action == "NotifyEvent"
        async with running(cfg, store) as again:
            await online(again)
            await drained(again)
            await rec.wait_count("NotifyEvent", 1)
        delivered = events(rec)
        assert [e["variable_monitoring_id"] for e in delivered] == [kept_id]
        assert delivered[0]["actual_value"] == "Occupied"
        assert dropped_id not in {e["variable_monitoring_id"] for e in delivered}


async def test_periodic_monitor_through_a_reset_n08(peer: tuple[Station, Recorder, Any]) -> None:
    """N08.FR.06 across B11: a Periodic monitor reports, is kept through a Reset
    (N07.FR.13) and reports again after it; the station then still stops cleanly (the timer
    that drives the monitor ends with the station: the fixture's stop would time out)."""
    _station, rec, point = peer
    (periodic,) = await set_monitors(point, _item(HEARTBEAT, "Periodic", 1, 3))
    await rec.wait_for(lambda r: len(of_monitor(r, periodic["id"])) >= 1, timeout=6)
    assert (await call(point, c201.Reset(type="Immediate"))).status == "Accepted"
    await rec.wait_count("BootNotification", 2)
    point = rec.points[SID]  # the connection after the reboot
    assert await report_ids(rec, point, 41, monitoring_criteria=["PeriodicMonitoring"]) == [
        periodic["id"]
    ]
