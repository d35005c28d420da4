"""OCPP 2.0.1 station against an independent CSMS (mobilityhouse ``ocpp``): GetReport (B08),
SetNetworkProfile (B09) and GetChargingProfiles (K09). Test names cite the use case."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from ocpp.v201 import call as c201

from ocppkit.messages import v201
from ocppkit.station.device_model import VariableKey
from ocppkit.station.station import Station, StationConfig
from ocppkit.station.store import StationStore
from tests.station.peers import Recorder, online, running, their_csms, with_their_csms

SID = "EMU201R"


@pytest.fixture
async def peer(store: StationStore) -> AsyncIterator[tuple[Station, Recorder, Any]]:
    async with with_their_csms(store, SID, "2.0.1", statuses=2) as peer:
        yield peer


async def call(point: Any, payload: Any) -> Any:
    return await point.call(payload, suppress=False)


def _profile(pid: int, purpose: str, stack: int = 0) -> dict[str, Any]:
    return {
        "id": pid,
        "stack_level": stack,
        "charging_profile_purpose": purpose,
        "charging_profile_kind": "Absolute",
        "charging_schedule": [
            {
                "id": 1,
                "start_schedule": "2026-01-01T00:00:00Z",
                "charging_rate_unit": "A",
                "charging_schedule_period": [{"start_period": 0, "limit": 16}],
            }
        ],
    }


def _network(security_profile: int) -> dict[str, Any]:
    return {
        "ocpp_version": "OCPP20",
        "ocpp_transport": "JSON",
        "ocpp_csms_url": "wss://csms.example.com/ocpp",
        "message_timeout": 30,
        "security_profile": security_profile,
        "ocpp_interface": "Wired0",
    }


async def test_get_charging_profiles_k09(peer: tuple[Station, Recorder, Any]) -> None:
    """K09: after SetChargingProfile, GetChargingProfiles is Accepted and the matching
    profiles come in ReportChargingProfiles (requestId, CSO, one per EVSE, tbc on all but
    the last); criteria that match nothing answer NoProfiles."""
    _station, rec, point = peer
    for evse, profile in (
        (1, _profile(21, "TxDefaultProfile", 1)),
        (2, _profile(22, "TxDefaultProfile", 2)),
        (0, _profile(23, "ChargingStationMaxProfile")),
    ):
        reply = await call(point, c201.SetChargingProfile(evse_id=evse, charging_profile=profile))
        assert reply.status == "Accepted"

    reply = await call(
        point,
        c201.GetChargingProfiles(
            request_id=7, charging_profile={"charging_profile_purpose": "TxDefaultProfile"}
        ),
    )
    assert reply.status == "Accepted"
    await rec.wait_count("ReportChargingProfiles", 2)
    reports = rec.of("ReportChargingProfiles")
    assert [r["evse_id"] for r in reports] == [1, 2]
    assert all(r["request_id"] == 7 and r["charging_limit_source"] == "CSO" for r in reports)
    assert reports[0]["tbc"] is True and "tbc" not in reports[1]
    assert [[p["id"] for p in r["charging_profile"]] for r in reports] == [[21], [22]]

    reply = await call(
        point, c201.GetChargingProfiles(request_id=8, evse_id=0, charging_profile={})
    )
    assert reply.status == "Accepted"
    await rec.wait_count("ReportChargingProfiles", 3)
    last = rec.of("ReportChargingProfiles")[-1]
    assert last["request_id"] == 8 and last["evse_id"] == 0
    assert [p["id"] for p in last["charging_profile"]] == [23]

    reply = await call(
        point,
        c201.GetChargingProfiles(
            request_id=9, charging_profile={"charging_profile_id": [22], "stack_level": 2}
        ),
    )
    assert reply.status == "Accepted"
    await rec.wait_count("ReportChargingProfiles", 4)
    assert [p["id"] for p in rec.of("ReportChargingProfiles")[-1]["charging_profile"]] == [22]

    for criteria in (
        {"stack_level": 5},
        {"charging_profile_id": [99]},
        {"charging_limit_source": ["EMS"]},
    ):
        reply = await call(
            point, c201.GetChargingProfiles(request_id=10, charging_profile=criteria)
        )
        assert reply.status == "NoProfiles"
    reply = await call(
        point,
        c201.GetChargingProfiles(
            request_id=11, evse_id=1, charging_profile={"charging_profile_purpose": "TxProfile"}
        ),
    )
    assert reply.status == "NoProfiles"
    assert len(rec.of("ReportChargingProfiles")) == 4


async def test_get_report_by_component_variable_b08(peer: tuple[Station, Recorder, Any]) -> None:
    """B08: GetReport of a componentVariable list is Accepted and one NotifyReport (the
    requestId, seqNo 0, no tbc) holds exactly those variables; a component without a
    variable reports all its variables; nothing known is EmptyResultSet."""
    _station, rec, point = peer
    reply = await call(
        point,
        c201.GetReport(
            request_id=31,
            component_variable=[
                {
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "HeartbeatInterval"},
                },
                {"component": {"name": "ReservationCtrlr"}},
            ],
        ),
    )
    assert reply.status == "Accepted"
    await rec.wait_count("NotifyReport", 1)
    page = rec.of("NotifyReport")[0]
    assert page["request_id"] == 31 and page["seq_no"] == 0 and "tbc" not in page
    got = [(d["component"]["name"], d["variable"]["name"]) for d in page["report_data"]]
    assert got == [
        ("OCPPCommCtrlr", "HeartbeatInterval"),
        ("ReservationCtrlr", "Available"),
        ("ReservationCtrlr", "Enabled"),
        ("ReservationCtrlr", "NonEvseSpecific"),
    ]
    assert page["report_data"][0]["variable_attribute"][0]["value"] == "300"

    reply = await call(
        point,
        c201.GetReport(
            request_id=32,
            component_variable=[{"component": {"name": "NoSuchCtrlr"}}],
        ),
    )
    assert reply.status == "EmptyResultSet"


async def test_get_report_by_criteria_pages_b08(peer: tuple[Station, Recorder, Any]) -> None:
    """B08: componentCriteria Available reports every variable of the components whose
    Available is true, in pages of DeviceDataCtrlr.ItemsPerMessage[GetReport] (seqNo 0..n,
    tbc on all but the last); combined with a componentVariable only those; a criterion the
    model cannot evaluate (Problem) is NotSupported."""
    station, rec, point = peer
    dm = station.behaviour.dm  # type: ignore[attr-defined]
    expected = dm.filtered_report_data([], [v201.ComponentCriterionEnum.AVAILABLE])
    per_page = dm.items_per_message("GetReport")
    reply = await call(point, c201.GetReport(request_id=41, component_criteria=["Available"]))
    assert reply.status == "Accepted"
    pages_wanted = -(-len(expected) // per_page)
    await rec.wait_count("NotifyReport", pages_wanted)
    pages = [p for p in rec.of("NotifyReport") if p["request_id"] == 41]
    assert [p["seq_no"] for p in pages] == list(range(pages_wanted))
    assert all(p.get("tbc") is True for p in pages[:-1]) and "tbc" not in pages[-1]
    names = {d["component"]["name"] for p in pages for d in p["report_data"]}
    assert {"ReservationCtrlr", "SmartChargingCtrlr", "EVSE", "Connector"} <= names
    assert "OCPPCommCtrlr" not in names and "TxCtrlr" not in names
    assert sum(len(p["report_data"]) for p in pages) == len(expected)

    reply = await call(
        point,
        c201.GetReport(
            request_id=42,
            component_criteria=["Enabled"],
            component_variable=[
                {"component": {"name": "EVSE", "evse": {"id": 2}}},
                {"component": {"name": "AuthCtrlr"}, "variable": {"name": "Enabled"}},
            ],
        ),
    )
    assert reply.status == "Accepted"
    await rec.wait_for(lambda r: any(p["request_id"] == 42 for p in r.of("NotifyReport")))
    page = next(p for p in rec.of("NotifyReport") if p["request_id"] == 42)
    assert [(d["component"]["name"], d["variable"]["name"]) for d in page["report_data"]] == [
        ("AuthCtrlr", "Enabled")
    ]

    reply = await call(point, c201.GetReport(request_id=43, component_criteria=["Problem"]))
    assert reply.status == "NotSupported"


async def test_get_report_paging_by_items_per_message_b08(store: StationStore) -> None:
    """B08: with a small DeviceDataCtrlr.ItemsPerMessage[GetReport] the report of one
    component comes in several pages (seqNo 0.., tbc true on all but the last)."""
    async with with_their_csms(store, SID, "2.0.1", statuses=2) as (station, rec, point):
        dm = station.behaviour.dm  # type: ignore[attr-defined]
        dm.set_actual(VariableKey("DeviceDataCtrlr", "ItemsPerMessage", None, None, None,
                                  "GetReport"), "2")  # fmt: skip
        reply = await call(
            point,
            c201.GetReport(request_id=51, component_variable=[{"component": {"name": "TxCtrlr"}}]),
        )
        assert reply.status == "Accepted"
        await rec.wait_count("NotifyReport", 4)
        pages = rec.of("NotifyReport")
        assert [p["seq_no"] for p in pages] == [0, 1, 2, 3]
        assert [len(p["report_data"]) for p in pages] == [2, 2, 2, 1]
        assert [p.get("tbc", False) for p in pages] == [True, True, True, False]


async def test_set_network_profile_b09(peer: tuple[Station, Recorder, Any]) -> None:
    """B09: a profile for an allowed slot is Accepted and stored; a slot outside
    NetworkConfigurationPriority's allowed ones is Rejected."""
    station, _rec, point = peer
    reply = await call(
        point, c201.SetNetworkProfile(configuration_slot=1, connection_data=_network(1))
    )
    assert reply.status == "Accepted"
    stored = station.behaviour.network_profiles  # type: ignore[attr-defined]
    assert stored[1]["ocppCsmsUrl"] == "wss://csms.example.com/ocpp"
    reply = await call(
        point, c201.SetNetworkProfile(configuration_slot=8, connection_data=_network(1))
    )
    assert reply.status == "Rejected"
    assert 8 not in station.behaviour.network_profiles  # type: ignore[attr-defined]


async def test_set_network_profile_lower_security_rejected_b09_a00_fr_005(
    store: StationStore,
) -> None:
    """B09 / A00.FR.005: a profile whose securityProfile is below the station's current one
    is Rejected; equal or higher is Accepted, and the stored profiles survive a restart of
    the Station object with the same store."""
    async with their_csms() as (port, _rec):
        cfg = StationConfig(
            station_id="EMU201-NET",
            csms_url=f"ws://127.0.0.1:{port}/ocpp",
            ocpp_version="2.0.1",
            security_profile=1,
            password="0123456789abcdef",
        )
        async with running(cfg, store) as station:
            await online(station)
            point = _rec.points["EMU201-NET"]
            low = await call(
                point, c201.SetNetworkProfile(configuration_slot=2, connection_data=_network(0))
            )
            assert low.status == "Rejected"
            ok = await call(
                point, c201.SetNetworkProfile(configuration_slot=2, connection_data=_network(2))
            )
            assert ok.status == "Accepted"
        async with running(cfg, store) as again:
            await online(again)
            stored = again.behaviour.network_profiles  # type: ignore[attr-defined]
            assert list(stored) == [2] and stored[2]["securityProfile"] == 2
