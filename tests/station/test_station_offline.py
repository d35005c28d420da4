"""The station without a CSMS (real SQLite store): the console's commands, the offline
authorization rules (1.6 §3.5 / 2.0.1 C13, C15), and the composite schedule of a station-wide
profile."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from ocppkit.commands.station import Console
from ocppkit.station.station import ActionRefused, Station, StationConfig
from ocppkit.station.store import StationStore


@pytest.fixture
async def station(tmp_path: Path) -> AsyncIterator[Station]:
    async with await StationStore.open(tmp_path / "st.sqlite3") as store:
        yield Station(
            StationConfig(station_id="OFF", csms_url="ws://127.0.0.1:1", connectors=2),
            store=store,
        )


async def test_console_commands(station: Station) -> None:
    out: list[str] = []
    console = Console(station, out.append)
    for line in ["help", "plug 2", "plug 2", "unplug x", "auth", "fault 1 GroundFailure",
                 "status", "clear 1", "clear 1", "nonsense", "trace on", "", "stop 1"]:  # fmt: skip
        assert await console.execute(line)
    assert await console.execute("quit") is False
    assert out[0].startswith("commands:")
    assert out[1] == "plugged"
    assert out[2].startswith("error: PLUG_IN refused")
    assert out[3] == "error: not a connector number: 'x'"
    assert out[4].startswith("error: auth needs an id token")
    assert out[5] == "faulted"
    snap = json.loads(out[6])
    assert [c["status"] for c in snap["connectors"]] == ["Faulted", "Preparing"]
    assert out[7] == "fault cleared" and out[8].startswith("error: FAULT_CLEARED refused")
    assert out[9].startswith("error: unknown command") and out[10] == "trace on"
    assert out[11].startswith("error: no transaction")


async def test_offline_unknown_token_is_refused_unless_allowed(station: Station) -> None:
    """1.6 §3.5.3 / key AllowOfflineTxForUnknownId: offline, an unknown id is rejected;
    with the key true the session starts and its StartTransaction waits in the queue."""
    await station.plug(1)
    assert await station.present_token("UNKNOWN", 1) == "Invalid"
    behaviour = station.behaviour
    assert behaviour.config.change_configuration("AllowOfflineTxForUnknownId", "true") == "Accepted"  # type: ignore[attr-defined]
    assert await station.present_token("UNKNOWN", 1) == "Accepted"
    snap = station.snapshot()
    assert snap["connectors"][0]["transaction"]["id"] == "-1"  # no StartTransaction.conf yet
    assert snap["queued"] == 1 and await station.store.count("OFF") == 1
    with pytest.raises(ActionRefused):
        await station.start_transaction(1, "OTHER")


async def test_station_wide_profile_and_composite_schedule(station: Station) -> None:
    """1.6 §3.13: a ChargePointMaxProfile on connector 0 applies to every connector; the
    composite schedule reports it, capped by the supply (32 A)."""
    profile = {
        "chargingProfileId": 5,
        "stackLevel": 0,
        "chargingProfilePurpose": "ChargePointMaxProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "startSchedule": "2020-01-01T00:00:00Z",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}],
        },
    }
    from ocppkit.messages import v16

    request = msgspec.convert(
        {"connectorId": 0, "csChargingProfiles": profile}, v16.SetChargingProfileRequest
    )
    behaviour = station.behaviour
    reply = await behaviour.on_set_charging_profile(request, None)  # type: ignore[attr-defined]
    assert reply == {"status": "Accepted"}
    for port in behaviour.ports.values():
        start = datetime.now(UTC)
        periods = behaviour.composite_periods(port, start, 3600, "A")
        assert periods == [{"startPeriod": 0, "limit": 16.0}]
        watts = behaviour.composite_periods(port, start, 60, "W")
        assert watts == [{"startPeriod": 0, "limit": 16 * 230 * 3}]


async def test_queue_limit_thins_updates_never_start_or_stop_f8(tmp_path: Path) -> None:
    """Checklist F8 (libocpp message_queue): at the queue limit every second queued
    MeterValues of the transaction is dropped; the StartTransaction never is."""
    async with await StationStore.open(tmp_path / "thin.sqlite3") as store:
        station = Station(
            StationConfig(station_id="THIN", csms_url="ws://127.0.0.1:1", queue_limit=6),
            store=store,
        )
        config = station.behaviour.config  # type: ignore[attr-defined]
        assert config.change_configuration("AllowOfflineTxForUnknownId", "true") == "Accepted"
        await station.start_transaction(1, "OFFLINE")
        port = station.behaviour.ports[1]
        assert port.tx is not None
        for _ in range(9):
            await station.behaviour.enqueue_sample(port, port.tx, aligned=False, trigger="x")
        pending = await store.pending("THIN")
        assert pending[0].action == "StartTransaction"
        assert len(pending) == station.snapshot()["queued"] < 10
        dropped = await store.dropped("THIN")
        assert dropped and all(d.action == "MeterValues" for d in dropped)
        assert all("F8" in d.reason for d in dropped)
