"""Checklist B of reliability.md §4 (framing), against the real CSMS over loopback: raw
stations send the exact bytes of each row, then the same socket must still answer a valid
CALL ("stays up") and no table but the message log may change ("nothing persisted")."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import structlog.testing
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from .conftest import (
    CsmsProcess,
    RawStation,
    StationFactory,
    assert_nothing_persisted,
    row_counts,
)

VERSIONS = ["1.6", "2.0.1"]
RPC_FRAMEWORK = {"1.6": "FormationViolation", "2.0.1": "RpcFrameworkError"}
FORMAT = {"1.6": "FormationViolation", "2.0.1": "FormatViolation"}


def assert_call_error(frame: list[Any], code: str | set[str], message_id: str) -> None:
    """A well-formed CALLERROR: ``[4, id, code, description ≤ 255, details]``, details {}."""
    assert frame[0] == 4 and len(frame) == 5, frame
    codes = {code} if isinstance(code, str) else code
    assert frame[1] == message_id and frame[2] in codes, frame
    assert isinstance(frame[3], str) and len(frame[3]) <= 255
    assert frame[4] == {} or isinstance(frame[4], dict)


@pytest.mark.parametrize("version", VERSIONS)
async def test_B1_invalid_json_gets_callerror_minus_one_not_echoed(
    raw_station: StationFactory, db_url: str, version: str
) -> None:
    """B1: ``[2,"1",`` (invalid JSON) -> "CE(RpcFrameworkError / FormationViolation, "-1"),
    description ≤255, details {}, raw input not echoed; stays up; nothing persisted"
    (2.0.1 Part 4 §4.2.3)."""
    station = await raw_station(f"B1-{version}", version)
    before = await row_counts(db_url)
    canary = "CANARY-" + "x" * 300
    await station.send(f'[2,"1","Authorize",{{"idTag":"{canary}"')
    frame = await station.recv()
    assert_call_error(frame, RPC_FRAMEWORK[version], "-1")
    assert frame[4] == {}
    assert "CANARY" not in str(frame)
    await station.assert_stays_up()
    assert_nothing_persisted(before, await row_counts(db_url))


B2_FRAMES = {
    "object": ("{}", "-1"),
    "empty array": ("[]", "-1"),
    "type only": ("[2]", "-1"),
    "type as string": ('["2","b2","Heartbeat",{}]', "b2"),
    "id as number": ('[2,1,"Heartbeat",{}]', "-1"),
    "string": ('"Heartbeat"', "-1"),
    "null": ("null", "-1"),
    "CALL without payload": ('[2,"b2","Heartbeat"]', "b2"),
    "CALL with extra element": ('[2,"b2","Heartbeat",{},{}]', "b2"),
}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("frame", "message_id"), list(B2_FRAMES.values()), ids=list(B2_FRAMES))
async def test_B2_valid_json_wrong_shape_gets_callerror_with_string_id(
    raw_station: StationFactory, db_url: str, version: str, frame: str, message_id: str
) -> None:
    """B2: valid JSON but ``{}`` / ``[]`` / ``[2]`` / ``["2","1","Heartbeat",{}]`` /
    ``[2,1,"Heartbeat",{}]`` -> "CE(RpcFrameworkError / FormationViolation) with the ID if it
    is a string, else "-1"; stays up" (ocpp-go ParseMessage tests)."""
    station = await raw_station(f"B2-{version}", version)
    before = await row_counts(db_url)
    await station.send(frame)
    assert_call_error(await station.recv(), RPC_FRAMEWORK[version], message_id)
    await station.assert_stays_up()
    assert_nothing_persisted(before, await row_counts(db_url))


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    "raw_id", ['""', '"' + "i" * 37 + '"', "null", "17", "1.5", "true", "[]", "{}"]
)
async def test_B3_bad_message_id_gets_callerror_minus_one(
    raw_station: StationFactory, db_url: str, version: str, raw_id: str
) -> None:
    """B3: message id ``""``, 37 chars, ``null``, number -> "CE(…, "-1"); stays up"
    (messageId is a string[36], 2.0.1 Part 4 §4.1.4; ocpp-go, SteVe DeserializerTest)."""
    station = await raw_station(f"B3-{version}", version)
    before = await row_counts(db_url)
    await station.send(f'[2,{raw_id},"Heartbeat",{{}}]')
    assert_call_error(await station.recv(), RPC_FRAMEWORK[version], "-1")
    await station.assert_stays_up()
    assert_nothing_persisted(before, await row_counts(db_url))


B4_FRAMES = {
    "type 0": '[0,"b4","Heartbeat",{}]',
    "type 1": '[1,"b4","Heartbeat",{}]',
    "type 7": '[7,"b4","Heartbeat",{}]',
    "type 5 (2.1 CALLRESULTERROR)": '[5,"b4","GenericError","",{}]',
    "type 6 (2.1 SEND)": '[6,"b4","Heartbeat",{}]',
}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("frame", list(B4_FRAMES.values()), ids=list(B4_FRAMES))
async def test_B4_unknown_message_type_2x_answered_16_ignored(
    raw_station: StationFactory, db_url: str, version: str, frame: str
) -> None:
    """B4: type number 0, 1, 7; 5 or 6 on a 2.0.1 connection -> "2.0.1:
    CE(MessageTypeNotSupported, id); 1.6: ignore and log; stays up" (2.0.1 Part 4 §4.4;
    1.6J §4.1.3: the payload SHALL be ignored)."""
    station = await raw_station(f"B4-{version}", version)
    before = await row_counts(db_url)
    with structlog.testing.capture_logs() as logs:
        await station.send(frame)
        if version == "2.0.1":
            assert_call_error(await station.recv(), "MessageTypeNotSupported", "b4")
        else:
            await station.assert_silent()
        await station.assert_stays_up()
    if version == "1.6":
        assert any(entry["event"] == "frame ignored" for entry in logs), logs
    assert_nothing_persisted(before, await row_counts(db_url))


async def test_B5_binary_frame_closes_1003(raw_station: StationFactory, db_url: str) -> None:
    """B5: binary frame -> "answered as B1, or close 1003; decide once and document" (RFC 6455
    §7.4.1). Decision (docs/robustness.md): **close 1003**, OCPP-J is text only (OCPP-J §3);
    a frame that is not text is not a malformed OCPP message but the wrong data type."""
    station = await raw_station("B5", "2.0.1")
    before = await row_counts(db_url)
    await station.websocket.send(b'[2,"b5","Heartbeat",{}]')
    assert await station.closed_with() == 1003
    assert_nothing_persisted(before, await row_counts(db_url))


async def test_B6_invalid_utf8_text_frame_closes_1007(
    raw_station: StationFactory, db_url: str
) -> None:
    """B6: invalid UTF-8 in a text frame -> "close 1007 (WebSocket layer)" (RFC 6455 §8.1)."""
    station = await raw_station("B6", "2.0.1")
    before = await row_counts(db_url)
    await station.websocket.send(b'[2,"b6","Authorize",{"idToken":"\xff\xfe"}]', text=True)
    assert await station.closed_with() == 1007
    assert_nothing_persisted(before, await row_counts(db_url))


def _in_call(value: str) -> str:
    """An otherwise valid 2.0.1 Authorize CALL with ``value`` where the idToken string goes."""
    return f'[2,"b7","Authorize",{{"idToken":{{"idToken":{value},"type":"ISO14443"}}}}]'


def _in_integer(value: str) -> str:
    """An otherwise valid 2.0.1 StatusNotification CALL with ``value`` as its evseId."""
    return (
        '[2,"b7","StatusNotification",{"timestamp":"2026-01-01T00:00:00Z",'
        f'"connectorStatus":"Available","evseId":{value},"connectorId":1}}]'
    )


#: The row's codes: the frame or payload is not acceptable JSON for OCPP.
ROW = {"FormatViolation", "RpcFrameworkError"}
#: A bomb that is well-formed JSON of the wrong type or range in a typed field gets the code
#: of the error-code table (checklist D2/D3), as any other wrong value there would.
TYPE = {"TypeConstraintViolation"}
RANGE = {"PropertyConstraintViolation"}
B7_CASES = [
    pytest.param(_in_call("[" * 2000 + "]" * 2000), ROW, id="2000 nested ["),
    pytest.param(_in_call("[" * 100_000 + "]" * 100_000), ROW, id="100000 nested ["),
    pytest.param(_in_call("[" * 100_000), ROW, id="100000 unclosed ["),
    pytest.param(_in_call('{"a":' * 5000 + "1" + "}" * 5000), ROW, id="5000 nested {"),
    pytest.param(_in_integer("9" * 5000), RANGE, id="5000-digit integer"),
    pytest.param(_in_integer("-" + "9" * 5000), RANGE, id="negative 5000-digit integer"),
    pytest.param(_in_integer("1e999"), RANGE, id="1e999"),
    pytest.param(_in_call("NaN"), ROW, id="NaN"),
    pytest.param(_in_call("Infinity"), ROW, id="Infinity"),
    pytest.param(_in_call("-Infinity"), ROW, id="-Infinity"),
    pytest.param(
        '[2,"b7","Authorize",{"idToken":{"idToken":"A","idToken":"B","type":"ISO14443"}}]',
        ROW,
        id="duplicate key",
    ),
    pytest.param(
        '[2,"b7","Authorize",{"idToken":{"idToken":"A","\\u0069dToken":"B","type":"ISO14443"}}]',
        ROW,
        id="duplicate key spelt with an escape",
    ),
    pytest.param(_in_call('"\\ud800"'), ROW, id="lone surrogate in idToken"),
    pytest.param('[2,"\\ud800","Heartbeat",{}]', ROW, id="lone surrogate in message id"),
    pytest.param(_in_call("[" + ",".join(["1"] * 10_000) + "]"), TYPE, id="10000-element array"),
    pytest.param("[" + ",".join(["2"] * 10_000) + "]", ROW, id="10000-element frame"),
]


@pytest.mark.parametrize(("frame", "codes"), B7_CASES)
async def test_B7_json_bombs_get_callerror_and_connection_stays_up(
    raw_station: StationFactory, db_url: str, frame: str, codes: set[str]
) -> None:
    """B7: JSON bombs in an otherwise valid CALL (2 000 and 100 000 nested ``[``, 5 000-digit
    integer, ``1e999``, ``NaN``/``Infinity``, duplicate key, ``"\\ud800"`` in idTag,
    10 000-element array) -> "CE(FormatViolation or RpcFrameworkError); no
    RecursionError/ValueError escapes; stays up; nothing persisted; each under 10 ms CPU".
    Numbers and arrays that are well-formed JSON in a typed field get that field's code of the
    error-code table instead (decision in docs/robustness.md)."""
    station = await raw_station("B7", "2.0.1")
    before = await row_counts(db_url)
    with structlog.testing.capture_logs() as logs:
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            await station.send(frame)
            reply = await station.recv()
            timings.append(time.perf_counter() - started)
            assert reply[0] == 4 and reply[2] in codes, reply
            assert reply[1] in ("b7", "-1")
            assert len(reply[3]) <= 255 and reply[4] == {}
        await station.assert_stays_up()
    # Round trip over loopback, client and CSMS in this process: an upper bound of the CPU.
    assert min(timings) < 0.010, f"{min(timings) * 1000:.1f} ms"
    assert not [e for e in logs if e.get("log_level") in ("error", "critical")], logs
    assert_nothing_persisted(before, await row_counts(db_url))


def _vm_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} missing")


def _reset_peak_rss(pid: int) -> None:
    with open(f"/proc/{pid}/clear_refs", "w") as refs:
        refs.write("5")  # Linux: reset VmHWM to the current RSS


MAX_SIZE = 1 << 20


@pytest.mark.parametrize("shape", ["single frame", "10000 fragments", "deflate from 10 kB"])
async def test_B8_oversized_frame_closes_1009_memory_bounded(
    csms_process: Callable[..., CsmsProcess], tmp_path: Path, shape: str
) -> None:
    """B8: frame of max_size + 1 (single frame; as 10 000 fragments; deflate-compressed from
    10 kB) -> "close 1009 before buffering beyond the cap; RSS growth < 2 × max_size"
    (python-websockets ``protocol.py``, ``permessage_deflate.py``). The CSMS runs in its own
    process so that its peak RSS (VmHWM, reset first) is measured alone."""
    server = csms_process(env={"OCPPKIT_MAX_FRAME_SIZE": str(MAX_SIZE)})
    server.start()
    url = f"ws://127.0.0.1:{server.port}/ocpp/B8"
    compression = "deflate" if shape.startswith("deflate") else None
    # Warm up: a full session, so that first-use allocations are not counted.
    async with ws_connect(url + "-warm", subprotocols=[Subprotocol("ocpp2.0.1")]) as websocket:
        warm = RawStation(websocket, "B8-warm")
        await warm.boot()
        await warm.assert_stays_up()
    await asyncio.sleep(0.3)
    payload = '[2,"b8","DataTransfer",{"vendorId":"V","data":"' + "a" * MAX_SIZE + '"}]'
    assert len(payload) > MAX_SIZE
    async with ws_connect(
        url, subprotocols=[Subprotocol("ocpp2.0.1")], compression=compression
    ) as websocket:
        station = RawStation(websocket, "B8")
        await station.boot()
        _reset_peak_rss(server.pid)
        baseline = _vm_kib(server.pid, "VmRSS")
        try:
            if shape == "10000 fragments":
                size = len(payload) // 10_000 + 1
                await websocket.send(payload[i : i + size] for i in range(0, len(payload), size))
            else:
                if compression:
                    assert len(payload.encode()) > 100 * 1024  # compresses to ~ a few kB
                await websocket.send(payload)
        except ConnectionClosed:
            pass
        assert await station.closed_with() == 1009
        peak = _vm_kib(server.pid, "VmHWM")
    growth = (peak - baseline) * 1024
    assert growth < 2 * MAX_SIZE, f"RSS grew {growth / MAX_SIZE:.2f} × max_size"
    # The CSMS is still serving.
    async with ws_connect(url + "-after", subprotocols=[Subprotocol("ocpp2.0.1")]) as websocket:
        after = RawStation(websocket, "B8-after")
        await after.boot()
        await after.assert_stays_up()


@pytest.mark.parametrize("version", VERSIONS)
async def test_B9_null_payload_for_empty_action_is_format_violation(
    raw_station: StationFactory, db_url: str, version: str
) -> None:
    """B9: payload ``null`` for an empty-payload action -> "decide: accept as {} (lenient) or
    CE(FormatViolation); test pins the choice" (2.0.1 Part 4 §4.1.5: an empty payload is
    ``{}``, not ``null``). Decision (docs/robustness.md): strict, **CE(FormatViolation /
    FormationViolation)**; ``null`` is accepted only where the connection's lenient mode
    allows it."""
    station = await raw_station(f"B9-{version}", version)
    before = await row_counts(db_url)
    await station.send('[2,"b9","Heartbeat",null]')
    assert_call_error(await station.recv(), FORMAT[version], "b9")
    await station.assert_stays_up()
    assert_nothing_persisted(before, await row_counts(db_url))


B10_FRAMES = {
    "trailing garbage": '[2,"b10","Heartbeat",{}]xyz',
    "trailing comma": '[2,"b10","Heartbeat",{}],',
    "two arrays": '[2,"b10","Heartbeat",{}][2,"b11","Heartbeat",{}]',
    "two arrays with space": '[2,"b10","Heartbeat",{}] [2,"b11","Heartbeat",{}]',
}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("frame", list(B10_FRAMES.values()), ids=list(B10_FRAMES))
async def test_B10_trailing_garbage_gets_callerror_minus_one(
    raw_station: StationFactory, db_url: str, version: str, frame: str
) -> None:
    """B10: trailing garbage / two arrays in one frame -> "CE(RpcFrameworkError, "-1")"; no
    half of the frame is processed."""
    station = await raw_station(f"B10-{version}", version)
    before = await row_counts(db_url)
    await station.send(frame)
    assert_call_error(await station.recv(), RPC_FRAMEWORK[version], "-1")
    await station.assert_silent(0.2)  # the second array is not answered either
    await station.assert_stays_up()
    assert_nothing_persisted(before, await row_counts(db_url))
