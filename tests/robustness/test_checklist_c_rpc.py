"""Checklist C of reliability.md §4 (RPC semantics), against the real CSMS over loopback:
raw stations on one side, the CSMS's HTTP API (``POST /api/stations/{id}/call``) driving the
CSMS's own CALLs on the other."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.typing import Subprotocol

from ocppkit.csms.settings import StationPolicy
from ocppkit.node import RunningCsms
from ocppkit.protocol import Router
from ocppkit.protocol.versions import OcppVersion
from ocppkit.storage import Database, repositories
from ocppkit.transport import Connection, serve

from .conftest import (
    BOOT,
    RawStation,
    StationFactory,
    assert_nothing_persisted,
    iso,
    query,
    row_counts,
)

Start = Callable[..., Awaitable[RunningCsms]]
GET_VARIABLES = {
    "getVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
    ]
}
VARIABLE_RESULT = {
    "getVariableResult": [
        {
            "attributeStatus": "Accepted",
            "attributeValue": "300",
            "component": {"name": "OCPPCommCtrlr"},
            "variable": {"name": "HeartbeatInterval"},
        }
    ]
}


@pytest.fixture
async def api(running: RunningCsms) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{running.api_port}", timeout=30
    ) as client:
        yield client


def post_call(
    api: httpx.AsyncClient, station_id: str, action: str, payload: dict[str, Any]
) -> asyncio.Task[httpx.Response]:
    """``POST /api/stations/{id}/call`` in the background."""
    return asyncio.create_task(
        api.post(f"/api/stations/{station_id}/call", json={"action": action, "payload": payload})
    )


def status_201(status: str = "Available", evse: int = 1) -> dict[str, Any]:
    return {"timestamp": iso(), "connectorStatus": status, "evseId": evse, "connectorId": 1}


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
@pytest.mark.parametrize(
    "action", ["Foo", "bootnotification", "BootNotificationRequest", "heartbeat", "Heartbeat "]
)
async def test_C1_unknown_or_miscased_action_not_implemented(
    raw_station: StationFactory, db_url: str, version: str, action: str
) -> None:
    """C1: unknown action ``Foo``; wrong case ``bootnotification`` -> "CE(NotImplemented, id)"
    (2.0.1 Part 4 §4.3; §4.2.1: the action is case-sensitive, without the Request suffix)."""
    station = await raw_station(f"C1-{version}", version)
    before = await row_counts(db_url)
    reply = await station.call(action, {}, message_id="c1")
    assert reply[:3] == [4, "c1", "NotImplemented"] and reply[4] == {}
    await station.assert_stays_up()
    assert_nothing_persisted(before, await row_counts(db_url))


@pytest.mark.parametrize(
    ("version", "action", "payload"),
    [
        # a 2.1-only action on a 2.0.1 connection (the row's example)
        ("2.0.1", "NotifySettlement", {}),
        # CSMS-to-station actions the CSMS does not answer when a station sends them
        ("2.0.1", "Reset", {"type": "Immediate"}),
        ("2.0.1", "ClearCache", {}),
        ("1.6", "ClearCache", {}),
        ("1.6", "Reset", {"type": "Hard"}),
        # another version's action
        ("1.6", "TransactionEvent", {}),
    ],
)
async def test_C2_known_action_not_handled_is_not_supported(
    raw_station: StationFactory, db_url: str, version: str, action: str, payload: dict[str, Any]
) -> None:
    """C2: "Known action the CSMS does not implement (e.g. a 2.1-only action on 2.0.1) ->
    CE(NotSupported, id)" (2.0.1 Part 4 §4.3: NotSupported, "recognized but not
    supported")."""
    station = await raw_station(f"C2-{version}", version)
    before = await row_counts(db_url)
    reply = await station.call(action, payload, message_id="c2")
    assert reply[:3] == [4, "c2", "NotSupported"], reply
    await station.assert_stays_up()
    assert_nothing_persisted(before, await row_counts(db_url))


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_C3_same_id_while_processing_gets_protocol_error_first_completes(
    raw_station: StationFactory, db_url: str, version: str
) -> None:
    """C3: "Same CALL ID while the first is still being processed -> CE(ProtocolError, id) for
    the second; the first completes normally" (2.0.1 Part 4 §4.2.3: "an existing call with
    the same unique identifier is being handled already"; SteVe ``d77191f``)."""
    station = await raw_station(f"C3-{version}", version)
    if version == "1.6":
        payload = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    else:
        payload = status_201()
    frame = json.dumps([2, "dup", "StatusNotification", payload])
    await station.send(frame)
    await station.send(frame)
    replies = [await station.recv(), await station.recv()]
    errors = [r for r in replies if r[0] == 4]
    results = [r for r in replies if r[0] == 3]
    assert len(errors) == 1 and len(results) == 1, replies
    assert errors[0][:3] == [4, "dup", "ProtocolError"]
    assert results[0] == [3, "dup", {}]
    await station.assert_silent(0.2)
    await station.assert_stays_up()
    # the first one was handled once: one status row
    rows = await query(
        db_url, "SELECT COUNT(*) FROM status_history WHERE station_id = :s", s=f"C3-{version}"
    )
    assert rows == [(1,)]


async def test_C4_21_retry_same_id_replays_cached_result(csms: Start, db_url: str) -> None:
    """C4 (OCPP 2.1 only): "Same CALL ID after completion, identical payload (2.1 retry) ->
    replay the cached CALLRESULT byte-identically; handler not re-run. Different payload ->
    CE(ProtocolError). Per-connection cache bounded (e.g. last 1 000 IDs)" (2.1 Part 4
    §4.1.4: "the message ID for a retried message MAY be identical"; SteVe ``6d82b43``).
    The message rate limit (row H1) is raised: 1 000 CALLs in a burst are this row's tool."""
    running = await csms(max_messages_per_second=100_000, message_burst=100_000)
    async with ws_connect(
        f"ws://127.0.0.1:{running.port}/ocpp/C4", subprotocols=[Subprotocol("ocpp2.1")]
    ) as websocket:
        assert websocket.subprotocol == "ocpp2.1"
        station = RawStation(websocket, "C4")
        assert (await station.boot())["status"] == "Accepted"
        frame = json.dumps([2, "retry-1", "StatusNotification", status_201()])
        await websocket.send(frame)
        first = await websocket.recv()
        await websocket.send(frame)
        assert await websocket.recv() == first  # byte-identical
        history = "SELECT COUNT(*) FROM status_history WHERE station_id = 'C4'"
        assert await query(db_url, history) == [(1,)]  # handler not re-run
        # same id, other content
        await station.send([2, "retry-1", "StatusNotification", status_201("Occupied")])
        assert (await station.recv())[:3] == [4, "retry-1", "ProtocolError"]
        # bounded: after 1 000 other ids the first ones are forgotten and handled anew (a
        # Heartbeat handled anew answers a new currentTime; a replay would repeat the old)
        heartbeat = json.dumps([2, "hb-first", "Heartbeat", {}])
        await websocket.send(heartbeat)
        cached_heartbeat = await websocket.recv()
        for index in range(1000):
            await station.send([2, f"hb-{index}", "Heartbeat", {}])
        for _ in range(1000):
            assert (await station.recv())[0] == 3
        await websocket.send(frame)
        assert json.loads(await websocket.recv())[:2] == [3, "retry-1"]
        await websocket.send(heartbeat)
        fresh = await websocket.recv()
        assert json.loads(fresh)[:2] == [3, "hb-first"] and fresh != cached_heartbeat
        assert await query(db_url, history) == [(1,)]  # the status itself is stored once (E10)


async def test_C5_pipelined_calls_answered_in_order_with_backpressure(
    running: RunningCsms, raw_station: StationFactory
) -> None:
    """C5: "Station sends 5 CALLs without waiting -> all answered, in arrival order; at most K
    queued, then reading pauses (backpressure), none dropped" (2.0.1 Part 4 §4.1.1;
    python-websockets ``max_queue``). K is ``max_inbound_queue`` / the connection's
    ``max_incoming`` (16)."""
    station = await raw_station("C5", "2.0.1")
    for count in (5, 200):
        ids = [f"c5-{count}-{i}" for i in range(count)]
        backlog: list[int] = []
        connection = running.service.connections["C5"]

        async def sample(connection: Connection = connection, backlog: list[int] = backlog) -> None:
            while True:
                backlog.append(connection.incoming_backlog)
                await asyncio.sleep(0)

        sampler = asyncio.create_task(sample())
        for message_id in ids:
            await station.send([2, message_id, "StatusNotification", status_201()])
        replies = [await station.recv(10) for _ in ids]
        sampler.cancel()
        assert [r[1] for r in replies] == ids  # in arrival order, none dropped
        assert all(r[0] == 3 for r in replies)
        assert max(backlog) <= 16, max(backlog)
    await station.assert_stays_up()


async def test_C6_reply_with_unknown_or_late_id_discarded(csms: Start, db_url: str) -> None:
    """C6: "CALLRESULT/CALLERROR with an unknown ID, or after the CSMS's timeout -> logged and
    discarded; pending calls unaffected; no state change; stays up" (libocpp ``receive()``;
    ocpp-go)."""
    running = await csms(call_timeout=0.5)
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.api_port}", timeout=30) as api,
        ws_connect(
            f"ws://127.0.0.1:{running.port}/ocpp/C6", subprotocols=[Subprotocol("ocpp2.0.1")]
        ) as websocket,
    ):
        station = RawStation(websocket, "C6")
        await station.boot()
        before = await row_counts(db_url)
        # unknown ids while a CSMS call is pending
        pending = post_call(api, "C6", "GetVariables", GET_VARIABLES)
        call = await station.recv()
        await station.send([3, "no-such-id", {"getVariableResult": []}])
        await station.send([4, "no-such-id", "GenericError", "", {}])
        await station.send([3, "-1", {}])
        await station.assert_silent(0.2)  # never answered
        await station.send([3, call[1], VARIABLE_RESULT])
        response = await pending
        assert response.status_code == 200, response.text
        assert response.json()["response"] == VARIABLE_RESULT
        # a reply after the timeout
        late = post_call(api, "C6", "GetVariables", GET_VARIABLES)
        call = await station.recv()
        assert (await late).status_code == 504
        await station.send([3, call[1], VARIABLE_RESULT])
        await station.send([4, call[1], "InternalError", "too late", {}])
        await station.assert_silent(0.2)
        await station.assert_stays_up()
        # and the next CSMS call still works
        after = post_call(api, "C6", "GetVariables", GET_VARIABLES)
        call = await station.recv()
        await station.send([3, call[1], VARIABLE_RESULT])
        assert (await after).status_code == 200
        assert_nothing_persisted(before, await row_counts(db_url))


@pytest.mark.parametrize(
    "bad_result",
    [
        {"getVariableResult": "not an array"},
        {"getVariableResult": [{"attributeStatus": "Maybe"}]},
        {},
        {"getVariableResult": [], "extra": 1},
    ],
    ids=["wrong type", "bad enum and missing fields", "missing field", "extra property"],
)
@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
async def test_C7_schema_invalid_callresult_gives_api_typed_error(
    running: RunningCsms,
    raw_station: StationFactory,
    api: httpx.AsyncClient,
    db_url: str,
    bad_result: dict[str, Any],
    version: str,
) -> None:
    """C7: "CALLRESULT with a schema-invalid payload (CSMS-initiated call) -> the API caller
    gets a typed error, not a partial object; no state change; 2.1: CALLRESULTERROR sent"
    (2.1 Part 4 §4.2.3; before 2.1 nothing is sent back: a CALLERROR never answers a
    CALLRESULT)."""
    station = await raw_station(f"C7-{version}", version)
    before = await row_counts(db_url)
    pending = post_call(api, f"C7-{version}", "GetVariables", GET_VARIABLES)
    call = await station.recv()
    await station.send([3, call[1], bad_result])
    response = await pending
    assert response.status_code == 502, response.text
    body = response.json()
    assert set(body) == {"code", "description", "details"}
    assert body["code"] in {
        "FormatViolation",
        "TypeConstraintViolation",
        "PropertyConstraintViolation",
        "OccurrenceConstraintViolation",
    }
    if version == "2.1":
        rejected = await station.recv()
        assert rejected[:3] == [5, call[1], body["code"]] and rejected[4] == {}, rejected
    await station.assert_silent(0.2)
    await station.assert_stays_up()
    assert_nothing_persisted(before, await row_counts(db_url))


async def test_C8_unanswered_call_times_out_next_goes_out_late_reply_discarded(
    csms: Start,
) -> None:
    """C8: "Station never answers a CSMS CALL -> resolves as timeout after T (default 30 s);
    the next queued CSMS call then goes out; a late result is discarded" (libocpp /
    mobilityhouse 30 s). T is ``call_timeout`` = 0.5 s here."""
    timeout = 0.5
    running = await csms(call_timeout=timeout)
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.api_port}", timeout=30) as api,
        ws_connect(
            f"ws://127.0.0.1:{running.port}/ocpp/C8", subprotocols=[Subprotocol("ocpp2.0.1")]
        ) as websocket,
    ):
        station = RawStation(websocket, "C8")
        await station.boot()
        started = time.monotonic()
        first = post_call(api, "C8", "GetVariables", GET_VARIABLES)
        unanswered = await station.recv()
        second = post_call(api, "C8", "ClearCache", {})
        queued = await station.recv(5)  # goes out only once the first timed out
        first_response = await first
        elapsed = time.monotonic() - started
        assert first_response.status_code == 504, first_response.text
        assert timeout <= elapsed < timeout + 1.5, elapsed
        assert queued[0] == 2 and queued[2] == "ClearCache"
        assert not first.done() or first_response.status_code == 504
        # the late reply to the first is discarded; the second is answered normally
        await station.send([3, unanswered[1], VARIABLE_RESULT])
        await station.send([3, queued[1], {"status": "Accepted"}])
        second_response = await second
        assert second_response.status_code == 200, second_response.text
        assert second_response.json()["response"] == {"status": "Accepted"}
        await station.assert_silent(0.2)
        await station.assert_stays_up()


async def test_C9_crossing_calls_do_not_deadlock(
    running: RunningCsms, raw_station: StationFactory, api: httpx.AsyncClient
) -> None:
    """C9: "CALLs cross: station sends a CALL while the CSMS waits for its own; a handler
    issues a CALL to the same station -> no deadlock; both complete" (mobilityhouse #130;
    libocpp PR #650). No CSMS handler calls its station back, so the second half runs on the
    transport the CSMS is built on (:func:`ocppkit.transport.serve`), over a real socket."""
    station = await raw_station("C9", "2.0.1")
    pending = post_call(api, "C9", "GetVariables", GET_VARIABLES)
    call = await station.recv()
    # the station's own CALLs while the CSMS waits for its reply
    await station.assert_stays_up()
    reply = await station.call("StatusNotification", status_201())
    assert reply[0] == 3
    await station.send([3, call[1], VARIABLE_RESULT])
    response = await asyncio.wait_for(pending, 5)
    assert response.status_code == 200, response.text

    # a handler that calls its station back before answering
    router = Router()

    async def authorize(request: Any, connection: Connection) -> Any:
        await connection.call("ClearCache", {})
        return {"idTokenInfo": {"status": "Accepted"}}

    router.register("Authorize", authorize)
    server = await serve({OcppVersion.V201: router}, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        async with ws_connect(
            f"ws://127.0.0.1:{port}/C9B", subprotocols=[Subprotocol("ocpp2.0.1")]
        ) as websocket:
            peer = RawStation(websocket, "C9B")
            await peer.send([2, "a1", "Authorize", {"idToken": {"idToken": "T", "type": "Local"}}])
            back = await peer.recv()
            assert back[0] == 2 and back[2] == "ClearCache"
            await peer.send([3, back[1], {"status": "Accepted"}])
            assert await peer.recv() == [3, "a1", {"idTokenInfo": {"status": "Accepted"}}]
    finally:
        server.close()
        await server.wait_closed()


class OneAtATimeStation:
    """A station that enforces "one outstanding CALL": it fails (records a violation) if the
    CSMS sends a second CALL before this station answered the first (2.0.1 Part 4 §4.1.1)."""

    def __init__(self, station: RawStation, answer_delay: float) -> None:
        self.station = station
        self.answer_delay = answer_delay
        self.violations: list[str] = []
        self.answered = 0
        self.outstanding: str | None = None
        self._answers: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        reader = asyncio.create_task(self._read())
        try:
            await reader
        except asyncio.CancelledError:
            reader.cancel()

    async def _read(self) -> None:
        while True:
            frame = await self.station.recv(30)
            if frame[0] != 2:
                continue
            if self.outstanding is not None:
                self.violations.append(f"{frame[1]} arrived while {self.outstanding} open")
            self.outstanding = frame[1]
            task = asyncio.create_task(self._answer(frame))
            self._answers.add(task)
            task.add_done_callback(self._answers.discard)

    async def _answer(self, frame: list[Any]) -> None:
        await asyncio.sleep(self.answer_delay)  # long enough for a second CALL to show up
        self.outstanding = None
        self.answered += 1
        await self.station.send([3, frame[1], {"status": "Accepted"}])


async def test_C10_concurrent_api_calls_one_on_the_wire_at_a_time(
    running: RunningCsms, raw_station: StationFactory, api: httpx.AsyncClient
) -> None:
    """C10: "API requests 10 concurrent calls to one station -> exactly one on the wire at a
    time (an emulator asserts the rule and fails the test if it is violated)" (2.0.1 Part 4
    §4.1.1: a sender SHALL NOT send a CALL while one of its CALLs is outstanding)."""
    station = await raw_station("C10", "2.0.1")
    guard = OneAtATimeStation(station, answer_delay=0.05)
    runner = asyncio.create_task(guard.run())
    try:
        responses = await asyncio.gather(
            *(
                api.post("/api/stations/C10/call", json={"action": "ClearCache", "payload": {}})
                for _ in range(10)
            )
        )
    finally:
        runner.cancel()
    assert [r.status_code for r in responses] == [200] * 10
    assert guard.answered == 10
    assert guard.violations == []


async def _c11_security_error(csms: Start, db_url: str) -> None:
    """C11: "CALL other than BootNotification before Accepted (Pending/Rejected) ->
    CE(SecurityError, id) ...; nothing persisted" (TC_B_30_CSMS; 1.6J errata 3.8;
    2.0.1 B02.FR.09 / B03.FR.07). Also pins G5 (docs/robustness.md): a SecurityEvent-
    Notification is not exempt while Pending; the station keeps it queued (A04.FR.02) and
    delivers it once Accepted."""
    for policy, status in ((StationPolicy.PENDING, "Pending"), (StationPolicy.REJECT, "Rejected")):
        running = await csms(unknown_stations=policy)
        if status == "Rejected":  # a known station the registry has Rejected (unknown: 404)
            async with Database(db_url) as db, db.write_session() as session:
                await repositories.register_boots(
                    session,
                    [
                        {
                            "station_id": "C11-Rejected",
                            "now": datetime.now(UTC),
                            "ocpp_version": "2.0.1",
                            "vendor": "Robust",
                            "model": "Raw",
                            "serial_number": None,
                            "firmware_version": None,
                            "default_status": "Rejected",
                        }
                    ],
                )
                await session.commit()
        before = await row_counts(db_url)
        async with ws_connect(
            f"ws://127.0.0.1:{running.port}/ocpp/C11-{status}",
            subprotocols=[Subprotocol("ocpp2.0.1")],
        ) as websocket:
            station = RawStation(websocket, f"C11-{status}")
            # before any BootNotification
            reply = await station.call("StatusNotification", status_201(), message_id="early")
            assert reply[:3] == [4, "early", "SecurityError"]
            boot = await station.result("BootNotification", BOOT["2.0.1"])
            assert boot["status"] == status
            for action, payload in (
                ("StatusNotification", status_201()),
                ("Heartbeat", {}),
                ("Authorize", {"idToken": {"idToken": "TAG", "type": "ISO14443"}}),
                (
                    "SecurityEventNotification",
                    {"type": "StartupOfTheDevice", "timestamp": iso()},
                ),
                (
                    "TransactionEvent",
                    {
                        "eventType": "Started",
                        "timestamp": iso(),
                        "triggerReason": "Authorized",
                        "seqNo": 0,
                        "transactionInfo": {"transactionId": "T-C11"},
                    },
                ),
            ):
                reply = await station.call(action, payload, message_id=f"c11-{action}")
                assert reply[:3] == [4, f"c11-{action}", "SecurityError"], reply
        await asyncio.sleep(0.1)
        after = await row_counts(db_url)
        # only the station's own row (its connection and Boot) may appear
        after["stations"] = before["stations"]
        assert_nothing_persisted(before, after)
        assert await query(
            db_url, "SELECT COUNT(*) FROM transactions WHERE transaction_uid = 'T-C11'"
        ) == [(0,)]
        await running.stop()


async def _c11_triggered_allowed(csms: Start, db_url: str) -> None:
    """C11, second half: "TriggerMessage-induced messages allowed while Pending"
    (2.0.1 B02.FR.09: while Pending the station may send what the CSMS triggered)."""
    running = await csms(unknown_stations=StationPolicy.PENDING)
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.api_port}", timeout=30) as api,
        ws_connect(
            f"ws://127.0.0.1:{running.port}/ocpp/C11-T", subprotocols=[Subprotocol("ocpp2.0.1")]
        ) as websocket,
    ):
        station = RawStation(websocket, "C11-T")
        assert (await station.result("BootNotification", BOOT["2.0.1"]))["status"] == "Pending"
        trigger = post_call(
            api,
            "C11-T",
            "TriggerMessage",
            {"requestedMessage": "StatusNotification", "evse": {"id": 1, "connectorId": 1}},
        )
        call = await station.recv()
        assert call[2] == "TriggerMessage"
        await station.send([3, call[1], {"status": "Accepted"}])
        assert (await trigger).status_code == 200
        reply = await station.call("StatusNotification", status_201())
        assert reply[0] == 3, reply


@pytest.mark.parametrize(
    "part",
    ["SecurityError before Accepted", "triggered while Pending"],
)
async def test_C11_calls_before_accepted_get_security_error(
    csms: Start, db_url: str, part: str
) -> None:
    """C11: "CALL other than BootNotification before Accepted (Pending/Rejected) ->
    CE(SecurityError, id); TriggerMessage-induced messages allowed while Pending; nothing
    persisted" (TC_B_30_CSMS; 1.6J errata 3.8; 2.0.1 B02.FR.09 / B03.FR.07)."""
    if part == "SecurityError before Accepted":
        await _c11_security_error(csms, db_url)
    else:
        await _c11_triggered_allowed(csms, db_url)
