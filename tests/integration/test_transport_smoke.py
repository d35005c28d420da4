"""The seed smoke tests, over real loopback WebSockets.

boot -> reply -> heartbeat cadence; unknown action -> NotImplemented; no reply -> local
timeout; 1 000 frames -> serialized writes and a bounded queue; the server closes ->
pending calls fail with connection-closed; a handler that calls back into the peer completes
(checklist C9, mobilityhouse #130). Plus subprotocol negotiation (2.0.1 Part 4 §3.1.3, §3.2).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog.testing
from websockets.asyncio.client import connect as raw_connect
from websockets.asyncio.server import Server
from websockets.asyncio.server import serve as raw_serve
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ocppkit.messages import v16, v201
from ocppkit.protocol import (
    CallTimeoutError,
    OcppVersion,
    Relaxation,
    Router,
    SessionClosedError,
)
from ocppkit.transport import Connection, NegotiationError, connect, serve

V16, V201 = OcppVersion.V16, OcppVersion.V201


def now() -> datetime:
    return datetime.now(UTC)


def port_of(server: Server) -> int:
    return int(server.sockets[0].getsockname()[1])


@pytest.fixture
async def csms() -> AsyncIterator[tuple[Server, dict[str, Any]]]:
    """A small CSMS on an ephemeral port: Boot (interval 1 s... scaled), Heartbeat, Authorize."""
    seen: dict[str, Any] = {"heartbeats": [], "connections": []}
    r16, r201 = Router(), Router()

    @r201.on("BootNotification")
    def boot(request: v201.BootNotificationRequest, conn: Connection) -> Any:
        return v201.BootNotificationResponse(
            current_time=now(), interval=1, status=v201.RegistrationStatusEnum.ACCEPTED
        )

    @r201.on("Heartbeat")
    def heartbeat(request: v201.HeartbeatRequest, conn: Connection) -> Any:
        seen["heartbeats"].append(asyncio.get_running_loop().time())
        return v201.HeartbeatResponse(current_time=now())

    @r16.on("Authorize")
    async def authorize(request: v16.AuthorizeRequest, conn: Connection) -> Any:
        # Calls back into the station before answering: must not deadlock (C9).
        version = await conn.call("GetLocalListVersion", v16.GetLocalListVersionRequest())
        seen["list_version"] = version.list_version
        return v16.AuthorizeResponse(
            id_tag_info=v16.IdTagInfo(status=v16.AuthorizationStatus.ACCEPTED)
        )

    async def on_connect(conn: Connection) -> None:
        seen["connections"].append(conn)

    server = await serve({V16: r16, V201: r201}, "127.0.0.1", 0, on_connect=on_connect)
    try:
        yield server, seen
    finally:
        server.close()
        await server.wait_closed()


async def test_boot_reply_heartbeat_cadence(csms: tuple[Server, dict[str, Any]]) -> None:
    """B01 boot, then Heartbeats at the interval the CSMS returned (scaled down to 0.2 s)."""
    server, seen = csms
    url = f"ws://127.0.0.1:{port_of(server)}/ocpp/CP-1"
    async with connect(url, versions=["2.0.1"]) as conn:
        assert conn.version == "2.0.1"
        reply = await conn.call(
            "BootNotification",
            v201.BootNotificationRequest(
                reason=v201.BootReasonEnum.POWER_UP,
                charging_station=v201.ChargingStation(vendor_name="ACME", model="X1"),
            ),
        )
        assert reply.status == v201.RegistrationStatusEnum.ACCEPTED and reply.interval == 1
        interval = reply.interval * 0.2
        for _ in range(3):
            await asyncio.sleep(interval)
            await conn.call("Heartbeat", v201.HeartbeatRequest())
    beats = seen["heartbeats"]
    assert len(beats) == 3
    gaps = [b - a for a, b in itertools.pairwise(beats)]
    assert all(gap >= interval * 0.9 for gap in gaps), gaps
    assert seen["connections"][0].identity == "CP-1"


async def test_unknown_action_gets_not_implemented(csms: tuple[Server, dict[str, Any]]) -> None:
    """C1: unknown action -> CALLERROR NotImplemented; the connection stays up."""
    server, _ = csms
    url = f"ws://127.0.0.1:{port_of(server)}/CP2"
    async with raw_connect(url, subprotocols=["ocpp2.0.1"]) as ws:
        await ws.send('[2,"a1","FooBar",{}]')
        reply = json.loads(await ws.recv())
        assert reply[:3] == [4, "a1", "NotImplemented"] and reply[4] == {}
        await ws.send('[2,"a2","ClearCache",{}]')  # known, but no handler on a CSMS
        assert json.loads(await ws.recv())[:3] == [4, "a2", "NotSupported"]
        await ws.send('[2,"a3","Heartbeat",{}]')
        assert json.loads(await ws.recv())[:2] == [3, "a3"]


async def test_no_reply_is_a_local_timeout() -> None:
    """C8: the peer never answers -> CallTimeoutError after call_timeout."""

    async def silent(ws: Any) -> None:
        async for _ in ws:
            pass

    async with raw_serve(silent, "127.0.0.1", 0, subprotocols=["ocpp1.6"]) as server:
        url = f"ws://127.0.0.1:{port_of(server)}/CP3"
        async with connect(url, versions=["1.6"], session_options={"call_timeout": 0.2}) as conn:
            with pytest.raises(CallTimeoutError, match="no reply to Heartbeat"):
                await conn.call("Heartbeat", v16.HeartbeatRequest())
            assert not conn.closed


async def test_thousand_frames_serialized_and_bounded() -> None:
    """C5, C10: 1 000 CALLs from the application -> exactly one on the wire at a time, all
    answered in order; and 1 000 CALLs sent at once by a peer -> all answered, in arrival
    order, while the handler queue never holds more than its bound."""
    in_flight = 0
    violations = 0

    async def strict_peer(ws: Any) -> None:
        # Asserts the one-outstanding-CALL rule: a second CALL before the answer is a violation.
        nonlocal in_flight, violations
        async for message in ws:
            frame = json.loads(message)
            in_flight += 1
            violations += in_flight > 1
            await asyncio.sleep(0)
            in_flight -= 1
            await ws.send(json.dumps([3, frame[1], {"currentTime": "2026-11-27T10:00:00Z"}]))

    async with raw_serve(strict_peer, "127.0.0.1", 0, subprotocols=["ocpp1.6"]) as server:
        url = f"ws://127.0.0.1:{port_of(server)}/CP4"
        async with connect(url, versions=["1.6"]) as conn:
            results = await asyncio.gather(
                *(conn.call("Heartbeat", v16.HeartbeatRequest()) for _ in range(1000))
            )
    assert len(results) == 1000 and violations == 0

    router = Router()
    peak = 0

    @router.on("Heartbeat")
    async def slow_heartbeat(request: Any, conn: Connection) -> Any:
        nonlocal peak
        peak = max(peak, conn.incoming_backlog)
        await asyncio.sleep(0)
        return v16.HeartbeatResponse(current_time=now())

    server = await serve({V16: router}, "127.0.0.1", 0)
    try:
        url = f"ws://127.0.0.1:{port_of(server)}/CP5"
        async with raw_connect(url, subprotocols=["ocpp1.6"]) as ws:
            for i in range(1000):  # without waiting for answers
                await ws.send(f'[2,"m{i}","Heartbeat",{{}}]')
            ids = [json.loads(await ws.recv())[1] for _ in range(1000)]
        assert ids == [f"m{i}" for i in range(1000)]
        assert 0 < peak <= 16
    finally:
        server.close()
        await server.wait_closed()


async def test_server_close_fails_pending_calls() -> None:
    """On close every pending call is resolved with a connection-closed error."""

    async def closer(ws: Any) -> None:
        await ws.recv()
        await ws.close(1001, "going away")

    async with raw_serve(closer, "127.0.0.1", 0, subprotocols=["ocpp2.0.1"]) as server:
        url = f"ws://127.0.0.1:{port_of(server)}/CP6"
        async with connect(url, versions=["2.0.1"]) as conn:
            pending = [
                asyncio.create_task(conn.call("Heartbeat", v201.HeartbeatRequest()))
                for _ in range(3)
            ]
            for task in pending:
                with pytest.raises(SessionClosedError):
                    await task
            await conn.wait_closed()
            assert conn.closed
            with pytest.raises(SessionClosedError):
                await conn.call("Heartbeat", v201.HeartbeatRequest())


async def test_handler_calling_back_into_the_peer_completes(
    csms: tuple[Server, dict[str, Any]],
) -> None:
    """C9: the CSMS's Authorize handler calls the station and waits; both complete."""
    server, seen = csms
    station = Router()
    station.register(
        "GetLocalListVersion", lambda request, conn: v16.GetLocalListVersionResponse(list_version=7)
    )
    url = f"ws://127.0.0.1:{port_of(server)}/CP7"
    async with connect(
        url, versions=["1.6"], routers={V16: station}, session_options={"call_timeout": 5}
    ) as conn:
        reply = await conn.call("Authorize", v16.AuthorizeRequest(id_tag="TAG1"))
    assert reply.id_tag_info.status == v16.AuthorizationStatus.ACCEPTED
    assert seen["list_version"] == 7


async def test_subprotocol_chosen_in_clients_order(csms: tuple[Server, dict[str, Any]]) -> None:
    """2.0.1 Part 4 §3.1.3 / A2: the first of the client's list that the server supports."""
    server, _ = csms
    url = f"ws://127.0.0.1:{port_of(server)}/CP8"
    async with raw_connect(url, subprotocols=["ocpp2.1", "ocpp1.6", "ocpp2.0.1"]) as ws:
        assert ws.subprotocol == "ocpp1.6"
    async with connect(url) as conn:  # default preference 2.1, 2.0.1, 1.6; server has no 2.1
        assert conn.version == "2.0.1"


async def test_no_common_subprotocol_handshake_completes_then_close(
    csms: tuple[Server, dict[str, Any]],
) -> None:
    """A1 / 2.0.1 Part 4 §3.2: complete the handshake without the header, then close."""
    server, _ = csms
    url = f"ws://127.0.0.1:{port_of(server)}/CP9"
    async with raw_connect(url, subprotocols=["ocpp9"]) as ws:
        assert ws.subprotocol is None
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1002
    with pytest.raises(NegotiationError):
        async with connect(url, versions=["2.1"]):
            pass


async def test_binary_frame_closes_1003(csms: tuple[Server, dict[str, Any]]) -> None:
    """B5: OCPP-J is text; a binary frame closes the connection with 1003 (our decision)."""
    server, _ = csms
    url = f"ws://127.0.0.1:{port_of(server)}/CP10"
    async with raw_connect(url, subprotocols=["ocpp2.0.1"]) as ws:
        await ws.send(b'[2,"1","Heartbeat",{}]')
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1003


@pytest.mark.parametrize("path", ["/ocpp/", "/ocpp/a%3Ab", "/ocpp/" + "x" * 49, "/ocpp/%zz"])
async def test_bad_identity_refused_before_upgrade(
    csms: tuple[Server, dict[str, Any]], path: str
) -> None:
    """A4 / 2.0.1 Part 4 §3.1.1: empty, ':' , over 48 chars, bad escape -> HTTP 400."""
    server, _ = csms
    with pytest.raises(InvalidStatus) as info:
        async with raw_connect(
            f"ws://127.0.0.1:{port_of(server)}{path}", subprotocols=["ocpp2.0.1"]
        ):
            pass
    assert info.value.response.status_code == 400


async def test_lenient_connection_accepts_and_logs() -> None:
    """Lenient mode per connection: the relaxation is used, counted and logged."""
    router = Router()
    router.register(
        "Authorize",
        lambda request, conn: v16.AuthorizeResponse(
            id_tag_info=v16.IdTagInfo(status=v16.AuthorizationStatus.ACCEPTED)
        ),
    )
    seen: list[Connection] = []

    async def on_connect(conn: Connection) -> None:
        seen.append(conn)

    lenient = frozenset({Relaxation.LONG_STRINGS})
    server = await serve(
        {V16: router}, "127.0.0.1", 0, on_connect=on_connect, session_options={"lenient": lenient}
    )
    try:
        with structlog.testing.capture_logs() as logs:
            async with raw_connect(
                f"ws://127.0.0.1:{port_of(server)}/CP11", subprotocols=["ocpp1.6"]
            ) as ws:
                await ws.send(json.dumps([2, "l1", "Authorize", {"idTag": "T" * 30}]))
                assert json.loads(await ws.recv())[:2] == [3, "l1"]
        assert seen[0].session.validator.relaxation_counts[Relaxation.LONG_STRINGS] == 1
        assert any(e["event"] == "lenient decode" and e["message_id"] == "l1" for e in logs)
    finally:
        server.close()
        await server.wait_closed()


async def test_oversized_frame_closes_1009() -> None:
    """B8: a frame over max_size closes the connection with 1009."""
    server = await serve({V16: Router()}, "127.0.0.1", 0, max_size=1000)
    try:
        async with raw_connect(
            f"ws://127.0.0.1:{port_of(server)}/CP12", subprotocols=["ocpp1.6"]
        ) as ws:
            await ws.send(
                json.dumps([2, "big", "DataTransfer", {"vendorId": "v", "data": "x" * 2000}])
            )
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1009
    finally:
        server.close()
        await server.wait_closed()
