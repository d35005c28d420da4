"""The station driven by our CSMS's HTTP API (``POST /api/stations/{id}/call``), and the
runtime's contract with the fleet: observer callbacks, ``wait_for_csms_call``, ``call``,
``send_raw``, ``snapshot``; a damaged state file is set aside, not fatal (checklist F7).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from ocppkit.node import RunningCsms
from ocppkit.protocol import OutgoingMessageError
from ocppkit.station.station import StationConfig
from ocppkit.station.store import StationStore
from ocppkit.storage import Database
from ocppkit.storage.models import Transaction
from tests.station.peers import drained, online, running


class Seen:
    """An observer implementing all three callbacks."""

    def __init__(self) -> None:
        self.frames: list[tuple[str, str]] = []
        self.calls: list[tuple[str, float, str | None, float]] = []
        self.states: list[str] = []

    def on_frame(self, station_id: str, direction: str, frame: str, at: float) -> None:
        self.frames.append((direction, frame))

    def on_call(
        self, station_id: str, action: str, latency: float, error: str | None, queued_for: float
    ) -> None:
        self.calls.append((action, latency, error, queued_for))

    def on_state(self, station_id: str, state: str) -> None:
        self.states.append(state)


@pytest.fixture
async def node(csms: Callable[..., Awaitable[RunningCsms]]) -> RunningCsms:
    """Our CSMS with the default settings (``running`` is the station helper here)."""
    return await csms()


@pytest.mark.parametrize(
    ("version", "start"),
    [
        ("1.6", {"action": "RemoteStartTransaction", "payload": {"idTag": "API-1"}}),
        (
            "2.0.1",
            {
                "action": "RequestStartTransaction",
                "payload": {
                    "idToken": {"idToken": "API-1", "type": "ISO14443"},
                    "remoteStartId": 1,
                },
            },
        ),
    ],
)
async def test_remote_start_stop_from_our_csms_api(
    version: str,
    start: dict[str, Any],
    node: RunningCsms,
    tmp_path: Path,
) -> None:
    """Our CSMS's API sends the remote start and stop; the transaction lands in its
    database ended with reason Remote (1.6 §5.11/§5.12, 2.0.1 F01/F03)."""
    seen = Seen()
    async with await StationStore.open(tmp_path / "st.sqlite3") as store:
        cfg = StationConfig(
            station_id=f"API-{version}",
            csms_url=f"ws://127.0.0.1:{node.port}/ocpp",
            ocpp_version=version,
        )
        async with (
            running(cfg, store, observer=seen) as station,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{node.api_port}") as client,
        ):
            await online(station)
            url = f"/api/stations/{station.station_id}/call"
            reply = await client.post(url, json=start)
            assert reply.status_code == 200, reply.text
            assert reply.json()["response"]["status"] == "Accepted"
            snap = await station.wait_for_state(
                lambda s: s["connectors"][0]["transaction"] is not None, 5
            )
            await drained(station)
            if version == "1.6":
                tx_id = int(snap["connectors"][0]["transaction"]["id"])
                while tx_id < 0:  # the StartTransaction.conf not in yet
                    await asyncio.sleep(0.05)
                    tx_id = int(station.snapshot()["connectors"][0]["transaction"]["id"])
                stop = {"action": "RemoteStopTransaction", "payload": {"transactionId": tx_id}}
            else:
                key = snap["connectors"][0]["transaction"]["id"]
                stop = {"action": "RequestStopTransaction", "payload": {"transactionId": key}}
            recorded = await station.wait_for_csms_call(start["action"], 1)
            assert recorded == start["payload"], "wait_for_csms_call: the payload, wire names"
            reply = await client.post(url, json=stop)
            assert reply.json()["response"]["status"] == "Accepted"
            await station.wait_for_state(lambda s: s["connectors"][0]["transaction"] is None, 5)
            await drained(station)
        async with Database(node.service.settings.database) as db, db.session() as session:
            (tx,) = (await session.scalars(select(Transaction))).all()
        assert tx.state == "Ended" and tx.stop_reason == "Remote"
    assert seen.states[:3] == ["connecting", "connected", "booted"]
    assert "charging" in seen.states and seen.states[-1] in ("idle", "disconnected")
    actions = [c[0] for c in seen.calls]
    assert actions[0] == "BootNotification" and "StatusNotification" in actions
    assert all(latency >= 0 for _, latency, _, _ in seen.calls)
    errors = [error for _, _, error, _ in seen.calls if error is not None]
    assert set(errors) <= {"Disconnected"}, errors  # at most a call cut by the final stop
    assert {d for d, _ in seen.frames} == {"in", "out"}


async def test_call_send_raw_and_snapshot(node: RunningCsms, tmp_path: Path) -> None:
    """``call`` sends any CALL (validated) and returns the reply in wire names; ``send_raw``
    puts any frame on the wire (our CSMS answers a broken one with a CALLERROR)."""
    seen = Seen()
    async with await StationStore.open(tmp_path / "st.sqlite3") as store:
        cfg = StationConfig(station_id="RAW-1", csms_url=f"ws://127.0.0.1:{node.port}")
        async with running(cfg, store, observer=seen) as station:
            await online(station)
            reply = await station.call("Heartbeat", {})
            assert "currentTime" in reply
            with pytest.raises(OutgoingMessageError, match="fails its schema"):
                await station.call("StatusNotification", {"connectorId": "one"})
            await station.send_raw('[2,"raw-1","NoSuchAction",{}]')
            async with asyncio.timeout(5):
                while not any('"raw-1"' in f and d == "in" for d, f in seen.frames):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            answer = next(f for d, f in seen.frames if d == "in" and '"raw-1"' in f)
            assert answer.startswith('[4,"raw-1","NotImplemented"')
            snap = station.snapshot()
            assert snap["station_id"] == "RAW-1" and snap["version"] == "1.6"
            assert snap["connected"] and snap["registration"] == "Accepted"
            assert [c["id"] for c in snap["connectors"]] == [1]


async def test_damaged_state_file_is_set_aside_and_the_station_runs_f7(
    node: RunningCsms, tmp_path: Path
) -> None:
    """F7: a state file that is not a database is quarantined; the station boots anyway."""
    path = tmp_path / "st.sqlite3"
    path.write_bytes(b"this is not an SQLite database" * 100)
    async with await StationStore.open(path) as store:
        assert store.incidents and store.incidents[0].quarantined_to.exists()
        cfg = StationConfig(station_id="F7", csms_url=f"ws://127.0.0.1:{node.port}")
        seen = Seen()
        async with running(cfg, store, observer=seen) as station:
            await online(station)
            await station.start_transaction(1, "TAG-F7")
            await drained(station)
            async with asyncio.timeout(5):
                while "SecurityEventNotification" not in [c[0] for c in seen.calls]:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
    (event,) = [f for d, f in seen.frames if d == "out" and "SecurityEventNotification" in f]
    assert '"type":"InvalidMessages"' in event and "not_a_database" in event
    assert ("SecurityEventNotification", None) in [(c[0], c[2]) for c in seen.calls]
