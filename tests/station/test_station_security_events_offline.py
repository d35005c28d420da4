"""A04.FR.02 (2.0.1, and the 1.6 Security whitepaper's A04.FR.02: "Security event
notifications MUST be queued with a guaranteed delivery"): SecurityEventNotification raised
while the CSMS is unreachable is kept in the station's persistent queue (a real SQLite file)
and arrives at an independent CSMS (mobilityhouse ``ocpp``) after it comes back — in the
order raised, once — and also after the station itself was restarted from its queue file.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from ocppkit.station.backoff import BackoffSettings
from ocppkit.station.station import Station, StationConfig
from ocppkit.station.store import StationStore
from tests.station.peers import Recorder, csms16, csms201, drained, online, running

#: Reconnect quickly and steadily while the CSMS is down.
QUICK = BackoffSettings(wait_minimum=0.2, random_range=0.0, repeat_times=0)
EVENTS = [
    ("TamperDetectionActivated", "lid opened"),
    ("SettingSystemTime", "clock set by operator"),
    ("ResetOrReboot", "reboot requested locally"),
]


@contextlib.asynccontextmanager
async def their_csms_at(port: int, rec: Recorder) -> AsyncIterator[int]:
    """The independent CSMS on ``port`` (0: any free one), recording into ``rec`` (which
    outlives a restart); yields the port. Leaving the block closes every connection."""
    c16, c201 = csms16(rec), csms201(rec)

    async def on_connect(ws: Any) -> None:
        cls: Any = c16 if ws.subprotocol == "ocpp1.6" else c201
        point = cls(ws.request.path.rsplit("/", 1)[-1], ws)
        rec.points[point.id] = point
        with contextlib.suppress(websockets.ConnectionClosed):
            await point.start()

    async with websockets.serve(
        on_connect, "127.0.0.1", port, subprotocols=["ocpp1.6", "ocpp2.0.1"]
    ) as server:
        yield server.sockets[0].getsockname()[1]


def received(rec: Recorder) -> list[tuple[str, str]]:
    return [(kw["type"], kw.get("tech_info", "")) for kw in rec.of("SecurityEventNotification")]


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a04_fr_02_events_raised_offline_arrive_after_the_reconnect_in_order_once(
    version: str, store: StationStore
) -> None:
    """A04.FR.02: the CSMS goes away; three security events are raised (through the one
    function the station reports them with); they wait in the persistent queue — not as
    transaction messages: no transaction key, no seqNo, no kind — and are delivered in
    order, exactly once, when the CSMS is back, with nothing else rewritten into them."""
    rec = Recorder()
    station_id = f"SEC-OFF-{version}"
    async with their_csms_at(0, rec) as port:
        cfg = StationConfig(
            station_id=station_id,
            csms_url=f"ws://127.0.0.1:{port}/ocpp",
            ocpp_version=version,
            backoff=QUICK,
        )
        async with contextlib.AsyncExitStack() as stack:
            station = await stack.enter_async_context(running(cfg, store))
            await online(station)
            await rec.wait_count("StatusNotification", 1)
            break_link = stack.pop_all()
        # the CSMS is down from here: the station is offline until it comes back
    async with break_link:
        await station.wait_for_state(lambda s: not s["online"], 10)
        behaviour = station.behaviour
        for event_type, info in EVENTS[:2]:
            await behaviour.security_event(event_type, info)
        behaviour.raise_security_event(*EVENTS[2])  # from code that cannot await
        await station.wait_for_state(lambda s: s["queued"] == 3, 10)
        pending = await store.pending(station_id)
        assert [m.action for m in pending] == ["SecurityEventNotification"] * 3
        assert all(m.tx_key is None and m.seq_no is None and m.kind is None for m in pending)
        assert received(rec) == []
        async with their_csms_at(port, rec):
            await rec.wait_count("SecurityEventNotification", 3)
            await drained(station)
            await asyncio.sleep(0.5)  # a duplicate would show up now
    assert received(rec) == EVENTS
    for kw in rec.of("SecurityEventNotification"):
        assert set(kw) == {"type", "timestamp", "tech_info"}, "nothing added (no transactionId)"
    assert await store.count(station_id) == 0 and await store.dropped(station_id) == []


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a04_fr_02_events_survive_a_station_restart_from_its_queue_file(
    version: str, tmp_path: Path
) -> None:
    """A station that never reached its CSMS raises two security events and goes away
    (its process ends; nothing but the SQLite file remains). A new station on the same file
    delivers them, in order, once, as soon as the CSMS is reachable."""
    path = tmp_path / "station.sqlite3"
    station_id = f"SEC-RESTART-{version}"
    async with await StationStore.open(path) as first_store:
        cfg = StationConfig(
            station_id=station_id, csms_url="ws://127.0.0.1:1/ocpp", ocpp_version=version
        )
        first = Station(cfg, store=first_store)
        for event_type, info in EVENTS[:2]:
            await first.behaviour.security_event(event_type, info)
        assert await first_store.count(station_id) == 2
    rec = Recorder()
    async with (
        their_csms_at(0, rec) as port,
        await StationStore.open(path) as store,
    ):
        cfg = StationConfig(
            station_id=station_id, csms_url=f"ws://127.0.0.1:{port}/ocpp", ocpp_version=version
        )
        async with running(cfg, store) as station:
            await rec.wait_count("SecurityEventNotification", 2)
            await drained(station)
            await asyncio.sleep(0.5)
    assert received(rec) == EVENTS[:2]
