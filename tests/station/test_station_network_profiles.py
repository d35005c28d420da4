"""The 2.0.1 station dials its stored network connection profiles: B09 (SetNetworkProfile),
B10 (Migrate to new CSMS: B10.FR.03 NetworkProfileConnectionAttempts per entry, B10.FR.04
the first entry of NetworkConfigurationPriority after a reboot, B10.FR.10 a boot on the new
connection), over real WebSockets against two independent CSMSs (the mobilityhouse ``ocpp``
library) and a real SQLite state file.

Each CSMS here can go "down": it then refuses every WebSocket handshake with HTTP 503 and
counts them, so a test sees exactly how many attempts the station made on it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import websockets
from ocpp.v201 import call as c201

from ocppkit.station.backoff import BackoffSettings
from ocppkit.station.station import Station, StationConfig
from ocppkit.station.store import StationStore
from tests.station.peers import Recorder, csms201, online, running

SID = "EMU201-NP"
FAST = BackoffSettings(wait_minimum=0.05, random_range=0.0, repeat_times=0)
"""Reconnect after 50 ms, every time: the tests count attempts, not seconds."""


@dataclass
class Csms:
    """One CSMS endpoint (see the module docstring)."""

    rec: Recorder = field(default_factory=Recorder)
    port: int = 0
    down: bool = False
    refused: int = 0
    """Handshakes refused while down."""
    paths: list[str] = field(default_factory=list)
    """The request path of every accepted WebSocket."""
    sockets: set[Any] = field(default_factory=set)

    def url(self, prefix: str = "ocpp") -> str:
        return f"ws://127.0.0.1:{self.port}/{prefix}"

    async def go_down(self) -> None:
        """Refuse new handshakes and drop the open connections (a CSMS outage)."""
        self.down = True
        for ws in list(self.sockets):
            await ws.close(1011, "going down")


@contextlib.asynccontextmanager
async def csms() -> AsyncIterator[Csms]:
    peer = Csms()
    handler = csms201(peer.rec)

    def process_request(connection: Any, request: Any) -> Any:
        if not peer.down:
            return None
        peer.refused += 1
        peer.rec.event.set()
        return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "down\n")

    async def on_connect(ws: Any) -> None:
        peer.paths.append(ws.request.path)
        point = handler(ws.request.path.rsplit("/", 1)[-1], ws)
        peer.rec.points[point.id] = point
        peer.sockets.add(ws)
        try:
            with contextlib.suppress(websockets.ConnectionClosed):
                await point.start()
        finally:
            peer.sockets.discard(ws)

    async with websockets.serve(
        on_connect,
        "127.0.0.1",
        0,
        subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
        process_request=process_request,
    ) as server:
        peer.port = server.sockets[0].getsockname()[1]
        yield peer


def config(a: Csms) -> StationConfig:
    return StationConfig(station_id=SID, csms_url=a.url(), ocpp_version="2.0.1", backoff=FAST)


def network(url: str, **changes: Any) -> dict[str, Any]:
    """A NetworkConnectionProfile (the mobilityhouse library's snake_case names)."""
    data: dict[str, Any] = {
        "ocpp_version": "OCPP20",
        "ocpp_transport": "JSON",
        "ocpp_csms_url": url,
        "message_timeout": 7,
        "security_profile": 0,
        "ocpp_interface": "Wired0",
    }
    data.update(changes)
    return data


def comm_ctrlr(variable: str, value: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": variable}}
    if value is not None:
        item["attribute_value"] = value
    return item


async def call(point: Any, payload: Any) -> Any:
    return await point.call(payload, suppress=False)


async def set_comm(point: Any, **values: str) -> list[str]:
    """SetVariables on OCPPCommCtrlr; the attributeStatus of each."""
    reply = await call(
        point,
        c201.SetVariables(set_variable_data=[comm_ctrlr(k, v) for k, v in values.items()]),
    )
    return [r["attribute_status"] for r in reply.set_variable_result]


async def get_comm(point: Any, variable: str) -> str:
    reply = await call(point, c201.GetVariables(get_variable_data=[comm_ctrlr(variable)]))
    return str(reply.get_variable_result[0]["attribute_value"])


async def migrate_to(station: Station, a: Csms, b: Csms) -> None:
    """B10 from CSMS A: profile for B in slot 1, priority "1,0", Reset; wait for the boot
    at B and the station online there."""
    point = a.rec.points[SID]
    reply = await call(
        point, c201.SetNetworkProfile(configuration_slot=1, connection_data=network(b.url("b")))
    )
    assert reply.status == "Accepted"
    assert await set_comm(point, NetworkConfigurationPriority="1,0") == ["RebootRequired"]
    reply = await call(point, c201.Reset(type="Immediate"))
    assert reply.status == "Accepted"
    await b.rec.wait_count("BootNotification", 1)
    await online(station)


async def test_migrate_to_new_csms_after_priority_and_reset_b10_fr_04(
    store: StationStore,
) -> None:
    """B10: connected to A, the station gets a profile for B in slot 1 (B09.FR.01) and
    NetworkConfigurationPriority "1,0" (RebootRequired: nothing changes yet); after Reset
    it connects to the first entry, B (B10.FR.04), at B's ocppCsmsUrl with the identity
    appended (Part 4 §3.1.1), and boots there (B10.FR.10). B reads ActiveNetworkProfile 1;
    A never sees the station again."""
    async with csms() as a, csms() as b, running(config(a), store) as station:
        await online(station)
        point = a.rec.points[SID]
        await call(
            point,
            c201.SetNetworkProfile(configuration_slot=1, connection_data=network(b.url("b"))),
        )
        assert await set_comm(point, NetworkConfigurationPriority="1,0") == ["RebootRequired"]
        assert b.paths == []  # the new priority applies at the next reboot only
        assert (await call(point, c201.Reset(type="Immediate"))).status == "Accepted"

        await b.rec.wait_count("BootNotification", 1)
        assert b.paths == [f"/b/{SID}"]
        assert b.rec.of("BootNotification")[0]["reason"] == "RemoteReset"
        await online(station)
        at_b = b.rec.points[SID]
        assert await get_comm(at_b, "ActiveNetworkProfile") == "1"
        assert await get_comm(at_b, "NetworkConfigurationPriority") == "1,0"
        assert len(a.rec.of("BootNotification")) == 1
        assert a.paths == [f"/ocpp/{SID}"]


async def test_fail_over_to_the_next_entry_after_the_configured_attempts_b10_fr_03(
    store: StationStore,
) -> None:
    """B10.FR.03: priority "0,1" with NetworkProfileConnectionAttempts 2; after a Reset
    the station is back at A (slot 0, the first entry, B10.FR.04). A goes down: the
    station makes exactly 2 attempts at A, then dials slot 1 (B) and boots there
    (B10.FR.10), using the profile's messageTimeout on that connection."""
    async with csms() as a, csms() as b, running(config(a), store) as station:
        await online(station)
        point = a.rec.points[SID]
        reply = await call(
            point,
            c201.SetNetworkProfile(configuration_slot=1, connection_data=network(b.url("b"))),
        )
        assert reply.status == "Accepted"
        statuses = await set_comm(
            point, NetworkConfigurationPriority="0,1", NetworkProfileConnectionAttempts="2"
        )
        assert statuses == ["RebootRequired", "Accepted"]
        await call(point, c201.Reset(type="Immediate"))
        await a.rec.wait_count("BootNotification", 2)
        await online(station)
        assert b.paths == []

        await a.go_down()
        await b.rec.wait_count("BootNotification", 1)
        assert a.refused == 2
        assert b.paths == [f"/b/{SID}"]
        await online(station)
        assert await get_comm(b.rec.points[SID], "ActiveNetworkProfile") == "1"
        conn = station.connection
        assert conn is not None and conn.session.call_timeout == 7


async def test_profiles_and_priority_survive_a_restart_b09_fr_01(store: StationStore) -> None:
    """B09.FR.01 / B10.FR.04: after the migration, a new Station on the same state file
    (still started with A's URL) dials B, the first entry, at once: the stored profiles,
    the priority and ActiveNetworkProfile were persisted."""
    async with csms() as a, csms() as b:
        async with running(config(a), store) as station:
            await online(station)
            await migrate_to(station, a, b)
        async with running(config(a), store) as again:
            await b.rec.wait_count("BootNotification", 2)
            await online(again)
            assert again.behaviour.network_profiles[1]["ocppCsmsUrl"] == b.url("b")  # type: ignore[attr-defined]
            assert len(a.rec.of("BootNotification")) == 1
            assert b.paths == [f"/b/{SID}", f"/b/{SID}"]


async def test_back_to_the_factory_slot_when_the_new_csms_is_down(store: StationStore) -> None:
    """B10.FR.03 with wrap-around: migrated to B ("1,0"), B goes down; after
    NetworkProfileConnectionAttempts (default 3) attempts at B the station dials the next
    entry, slot 0 (the URL it was started with), and boots at A again."""
    async with csms() as a, csms() as b, running(config(a), store) as station:
        await online(station)
        await migrate_to(station, a, b)
        await b.go_down()
        await a.rec.wait_count("BootNotification", 2)
        assert b.refused == 3
        await online(station)
        assert await get_comm(a.rec.points[SID], "ActiveNetworkProfile") == "0"


async def test_unusable_profiles_are_rejected_b09_fr_02(store: StationStore) -> None:
    """B09.FR.02: a profile the station cannot connect with (OCPP 1.6, SOAP, an http://
    URL, TLS profile on ws://) is Rejected with reasonCode InvalidNetworkConf and not
    stored."""
    async with csms() as a, running(config(a), store) as station:
        await online(station)
        point = a.rec.points[SID]
        bad = [
            network(a.url(), ocpp_version="OCPP16"),
            network(a.url(), ocpp_transport="SOAP"),
            network("http://127.0.0.1:1/ocpp"),
            network(a.url(), security_profile=2),
        ]
        for data in bad:
            reply = await call(
                point, c201.SetNetworkProfile(configuration_slot=2, connection_data=data)
            )
            assert reply.status == "Rejected"
            assert reply.status_info["reason_code"] == "InvalidNetworkConf"
        assert station.behaviour.network_profiles == {}  # type: ignore[attr-defined]
