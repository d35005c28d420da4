"""``/api/transactions``: filters, paging, detail with meter values and energy, on both
storage backends, from real 1.6 and 2.0.1 stations (mobilityhouse)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import websockets
from ocpp.v16 import call as c16
from ocpp.v201 import call as c201

from tests.api.conftest import iso
from tests.helpers.mobilityhouse import Station201 as MhStation201

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


async def start(cp: Any, connector: int, tag: str, meter: int, when: str) -> int:
    reply = await cp.call(
        c16.StartTransaction(connector_id=connector, id_tag=tag, meter_start=meter, timestamp=when)
    )
    return int(reply.transaction_id)


@contextlib.asynccontextmanager
async def booted_201(running: Any, station_id: str = "CS201") -> AsyncIterator[Any]:
    """A mobilityhouse 2.0.1 station connected to ``running`` and Accepted at its boot."""
    ws = await websockets.connect(
        f"ws://127.0.0.1:{running.port}/ocpp/{station_id}", subprotocols=["ocpp2.0.1"]
    )
    cp = MhStation201(station_id, ws)
    task = asyncio.create_task(cp.start())
    try:
        boot = c201.BootNotification(
            charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp"
        )
        assert (await cp.call(boot)).status == "Accepted"
        yield cp
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await ws.close()


async def test_filters_and_paging(api: Any, stations: Any) -> None:
    """station, id tag, Active/Ended, started after/before (inclusive bounds), limit/offset;
    newest first; timezone-naive bounds are 422."""
    running, client = await api()
    cp1 = await stations(running.port, "CP1")
    cp2 = await stations(running.port, "CP2")
    a = await start(cp1, 1, "TAG1", 0, at(0))
    b = await start(cp1, 2, "TAG2", 0, at(10))
    c = await start(cp2, 1, "TAG1", 0, at(20))
    await cp1.call(c16.StopTransaction(meter_stop=10, timestamp=at(5), transaction_id=a))

    async def ids(**params: Any) -> list[int]:
        response = await client.get("/api/transactions", params=params)
        assert response.status_code == 200, response.text
        return [t["id"] for t in response.json()]

    assert await ids() == [c, b, a]
    assert await ids(station_id="CP1") == [b, a]
    assert await ids(id_tag="TAG1") == [c, a]
    assert await ids(state="Active") == [c, b]
    assert await ids(state="Ended") == [a]
    assert await ids(started_after=at(10)) == [c, b]
    assert await ids(started_before=at(10)) == [b, a]
    assert await ids(started_after=at(1), started_before=at(19)) == [b]
    assert await ids(station_id="CP1", id_tag="TAG1", state="Ended") == [a]
    assert await ids(limit=2) == [c, b]
    assert await ids(limit=2, offset=2) == [a]
    for bad in (
        {"started_after": "2026-03-01T12:00:00"},
        {"started_before": "yesterday"},
        {"offset": -1},
        {"state": "Finished"},
    ):
        assert (await client.get("/api/transactions", params=bad)).status_code == 422, bad


async def test_energy_of_active_and_ended_1_6(api: Any, stations: Any) -> None:
    """Active: last Energy.Active.Import.Register minus meterStart (kWh converted; other
    measurands and phase values ignored); null before any reading. Ended: meterStop minus
    meterStart, also in the listing."""
    running, client = await api()
    cp = await stations(running.port, "CP1")
    tx = await start(cp, 1, "TAG1", 1000, iso())
    detail = (await client.get(f"/api/transactions/{tx}")).json()
    assert detail["energy_wh"] is None and detail["meter_values"] == []

    samples = [
        [{"value": "1750", "unit": "Wh"}],  # default measurand: the energy register
        [
            {"value": "1.9", "unit": "kWh", "measurand": "Energy.Active.Import.Register"},
            {"value": "7200", "unit": "W", "measurand": "Power.Active.Import"},
            {
                "value": "0.5",
                "unit": "kWh",
                "measurand": "Energy.Active.Import.Register",
                "phase": "L1",
            },
        ],
    ]
    for delta, sampled in enumerate(samples, start=1):
        await cp.call(
            c16.MeterValues(
                connector_id=1,
                transaction_id=tx,
                meter_value=[{"timestamp": iso(delta), "sampled_value": sampled}],
            )
        )
    detail = (await client.get(f"/api/transactions/{tx}")).json()
    assert detail["state"] == "Active"
    assert detail["energy_wh"] == 900  # 1.9 kWh - 1000 Wh
    assert [(m["raw_value"], m["unit"]) for m in detail["meter_values"]] == [
        ("1750", "Wh"),
        ("1.9", "kWh"),
        ("7200", "W"),
        ("0.5", "kWh"),
    ]
    listed = (await client.get("/api/transactions")).json()
    assert listed[0]["energy_wh"] is None  # the listing shows stored values only

    await cp.call(c16.StopTransaction(meter_stop=2600, timestamp=iso(3), transaction_id=tx))
    detail = (await client.get(f"/api/transactions/{tx}")).json()
    assert (detail["state"], detail["energy_wh"], detail["meter_stop"]) == ("Ended", 1600, 2600)
    assert (await client.get("/api/transactions")).json()[0]["energy_wh"] == 1600


async def test_energy_of_2_0_1_transaction(api: Any) -> None:
    """2.0.1 TransactionEvent: energy so far from the Updated event's register reading
    (kWh), then meter stop minus start at Ended; transaction_uid is the station's id."""
    running, client = await api()
    async with booted_201(running) as cp:
        common = {
            "transaction_info": {"transaction_id": "tx-9"},
            "evse": {"id": 1, "connector_id": 1},
        }

        def energy(value: float, unit: str = "Wh") -> list[dict[str, Any]]:
            return [
                {
                    "timestamp": iso(),
                    "sampled_value": [{"value": value, "unit_of_measure": {"unit": unit}}],
                }
            ]

        await cp.call(
            c201.TransactionEvent(
                event_type="Started",
                seq_no=0,
                trigger_reason="Authorized",
                timestamp=iso(),
                id_token={"id_token": "TOKEN1", "type": "ISO14443"},
                meter_value=energy(1000),
                **common,
            )
        )
        await cp.call(
            c201.TransactionEvent(
                event_type="Updated",
                seq_no=1,
                trigger_reason="MeterValuePeriodic",
                timestamp=iso(1),
                meter_value=energy(2.25, "kWh"),
                **common,
            )
        )
        listed = (await client.get("/api/transactions", params={"station_id": "CS201"})).json()
        assert [t["transaction_uid"] for t in listed] == ["tx-9"]
        detail = (await client.get(f"/api/transactions/{listed[0]['id']}")).json()
        assert (detail["state"], detail["id_tag"], detail["energy_wh"]) == (
            "Active",
            "TOKEN1",
            1250,
        )
        await cp.call(
            c201.TransactionEvent(
                event_type="Ended",
                seq_no=2,
                trigger_reason="StopAuthorized",
                timestamp=iso(2),
                meter_value=energy(3000),
                **common,
            )
        )
        detail = (await client.get(f"/api/transactions/{listed[0]['id']}")).json()
        assert (detail["state"], detail["energy_wh"]) == ("Ended", 2000)
        assert len(detail["meter_values"]) == 3


async def test_unknown_and_malformed_ids(api: Any) -> None:
    _, client = await api()
    missing = await client.get("/api/transactions/424242")
    assert missing.status_code == 404 and "424242" in missing.json()["detail"]
    assert (await client.get("/api/transactions/abc")).status_code == 422


async def test_integers_beyond_32_bits_from_stations_are_answered_and_stored(
    api: Any, stations: Any
) -> None:
    """The schemas bound no connector or EVSE id, seqNo or transactionId; a value past 32
    bits (but within 64) is answered and stored on both backends. Before, PostgreSQL's
    32-bit columns failed the write: InternalError on every retry of a valid message."""
    big = 2**40
    running, client = await api()
    cp = await stations(running.port, "CP1")
    await cp.call(
        c16.StatusNotification(connector_id=big, error_code="NoError", status="Available")
    )
    sample = [{"timestamp": iso(), "sampled_value": [{"value": "5"}]}]
    await cp.call(c16.MeterValues(connector_id=1, transaction_id=big, meter_value=sample))
    await cp.call(c16.StopTransaction(meter_stop=5, timestamp=iso(), transaction_id=big))
    detail = (await client.get("/api/stations/CP1")).json()
    assert big in [c["connector_id"] for c in detail["connectors"]]

    async with booted_201(running) as cp201:
        await cp201.call(
            c201.TransactionEvent(
                event_type="Started",
                timestamp=iso(),
                trigger_reason="CablePluggedIn",
                seq_no=big,
                transaction_info={"transaction_id": "tx-big"},
                evse={"id": big, "connector_id": big},
            )
        )
    started = [
        t for t in (await client.get("/api/transactions")).json() if t["station_id"] == "CS201"
    ]
    assert [(t["evse_id"], t["connector_id"]) for t in started] == [(big, big)]


async def test_register_readings_no_meter_gives_are_answered_without_energy(
    api: Any, stations: Any
) -> None:
    """Found by sending schema-valid payloads: a 2.x register reading of 1e300 kWh made
    round() overflow, and 1.6 meterStart 2**62 / meterStop -2**62 made stop minus start
    overflow 64 bits; both were InternalError on every retry. The CALLs are answered; such
    a reading is no meter start or stop (2.x), and no energy is computed from it (1.6)."""
    running, client = await api()
    cp = await stations(running.port, "CP1")
    started = await cp.call(
        c16.StartTransaction(connector_id=1, id_tag="T", meter_start=2**62, timestamp=iso())
    )
    await cp.call(
        c16.StopTransaction(
            meter_stop=-(2**62), timestamp=iso(1), transaction_id=started.transaction_id
        )
    )
    stopped = (await client.get(f"/api/transactions/{started.transaction_id}")).json()
    assert (stopped["state"], stopped["meter_stop"], stopped["energy_wh"]) == (
        "Ended",
        -(2**62),
        None,
    )

    async with booted_201(running) as cp201:
        reading = [
            {
                "timestamp": iso(),
                "sampled_value": [{"value": 1e300, "unit_of_measure": {"unit": "kWh"}}],
            }
        ]
        for seq_no, event_type in enumerate(("Started", "Ended")):
            await cp201.call(
                c201.TransactionEvent(
                    event_type=event_type,
                    timestamp=iso(seq_no),
                    trigger_reason="EVDeparted" if seq_no else "CablePluggedIn",
                    seq_no=seq_no,
                    transaction_info={"transaction_id": "tx-huge"},
                    evse={"id": 1, "connector_id": 1},
                    meter_value=reading,
                )
            )
    (ended,) = [
        t for t in (await client.get("/api/transactions")).json() if t["station_id"] == "CS201"
    ]
    assert (ended["state"], ended["meter_start"], ended["meter_stop"]) == ("Ended", None, None)
