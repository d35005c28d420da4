"""OCPP 2.0.1 station against an independent CSMS (mobilityhouse ``ocpp``): display
messages (O01-O06). Test names cite the use case."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator
from typing import Any

import pytest
from ocpp.v201 import call as c201

from ocppkit.station.device_model import DISPLAY_MESSAGES_MAX, VariableKey
from ocppkit.station.station import Station
from ocppkit.station.store import StationStore
from tests.station.peers import Recorder, with_their_csms

SID = "EMU201D"


@pytest.fixture
async def peer(store: StationStore) -> AsyncIterator[tuple[Station, Recorder, Any]]:
    async with with_their_csms(store, SID, "2.0.1", statuses=2) as peer:
        yield peer


async def call(point: Any, payload: Any) -> Any:
    return await point.call(payload, suppress=False)


def message(mid: int, priority: str = "NormalCycle", fmt: str = "UTF8", **extra: Any) -> dict:
    return {
        "id": mid,
        "priority": priority,
        "message": {"format": fmt, "content": f"message {mid}"},
        **extra,
    }


async def set_message(point: Any, mid: int, **kw: Any) -> str:
    reply = await call(point, c201.SetDisplayMessage(message=message(mid, **kw)))
    return str(reply.status)


async def listed(rec: Recorder, point: Any, request_id: int, **filters: Any) -> list[int] | None:
    """The ids GetDisplayMessages reports (None: Unknown)."""
    reply = await call(point, c201.GetDisplayMessages(request_id=request_id, **filters))
    if reply.status == "Unknown":
        return None
    assert reply.status == "Accepted"
    await rec.wait_for(
        lambda r: any(
            p["request_id"] == request_id and not p.get("tbc")
            for p in r.of("NotifyDisplayMessages")
        )
    )
    pages = [p for p in rec.of("NotifyDisplayMessages") if p["request_id"] == request_id]
    return [m["id"] for p in pages for m in p["message_info"]]


def iso(delta_seconds: float) -> str:
    when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=delta_seconds)
    return when.isoformat()


async def test_set_display_message_statuses_o01_o02(peer: tuple[Station, Recorder, Any]) -> None:
    """O01: Accepted; a format outside DisplayMessageCtrlr.SupportedFormats is
    NotSupportedMessageFormat, a priority outside SupportedPriorities NotSupportedPriority;
    an end time already past is Rejected. O02: a transactionId the station is not running is
    UnknownTransaction. A full store (DisplayMessages maxLimit) is Rejected, yet replacing a
    configured id is still Accepted (O06); DisplayMessages counts the messages."""
    station, _rec, point = peer
    dm = station.behaviour.dm  # type: ignore[attr-defined]
    dm.set_actual(VariableKey("DisplayMessageCtrlr", "SupportedFormats"), "ASCII,UTF8")
    dm.set_actual(VariableKey("DisplayMessageCtrlr", "SupportedPriorities"), "InFront,NormalCycle")
    assert await set_message(point, 1) == "Accepted"
    assert await set_message(point, 2, fmt="HTML") == "NotSupportedMessageFormat"
    assert await set_message(point, 3, priority="AlwaysFront") == "NotSupportedPriority"
    assert await set_message(point, 4, transaction_id="no-such-tx") == "UnknownTransaction"
    assert await set_message(point, 5, end_date_time=iso(-60)) == "Rejected"
    for mid in range(10, 10 + DISPLAY_MESSAGES_MAX - 1):
        assert await set_message(point, mid) == "Accepted"
    assert await set_message(point, 99) == "Rejected"
    assert await set_message(point, 1, priority="InFront") == "Accepted"
    count = dm.actual(VariableKey("DisplayMessageCtrlr", "DisplayMessages"))
    assert count == str(DISPLAY_MESSAGES_MAX)


async def test_get_and_clear_display_messages_o03_o04_o05(
    peer: tuple[Station, Recorder, Any],
) -> None:
    """O03: without filters, Unknown while no message is configured, then Accepted and
    every message in NotifyDisplayMessages pages (the requestId; tbc on all but the last,
    pages of DeviceDataCtrlr.ItemsPerMessage[GetReport]). O04: the messages matching every
    filter (id, priority, state), Unknown when none does. O05: ClearDisplayMessage Accepted
    then Unknown for the same id."""
    station, rec, point = peer
    assert await listed(rec, point, 1) is None
    assert await set_message(point, 1, state="Charging") == "Accepted"
    assert await set_message(point, 2, priority="InFront", state="Idle") == "Accepted"
    assert await set_message(point, 3, priority="InFront") == "Accepted"
    dm = station.behaviour.dm  # type: ignore[attr-defined]
    dm.set_actual(
        VariableKey("DeviceDataCtrlr", "ItemsPerMessage", variable_instance="GetReport"), "2"
    )
    assert await listed(rec, point, 2) == [1, 2, 3]
    pages = [p for p in rec.of("NotifyDisplayMessages") if p["request_id"] == 2]
    assert [p.get("tbc", False) for p in pages] == [True, False]
    assert await listed(rec, point, 3, priority="InFront") == [2, 3]
    assert await listed(rec, point, 4, priority="InFront", state="Idle") == [2]
    assert await listed(rec, point, 5, id=[1, 3, 7]) == [1, 3]
    assert await listed(rec, point, 6, id=[1], priority="InFront") is None

    assert (await call(point, c201.ClearDisplayMessage(id=2))).status == "Accepted"
    assert (await call(point, c201.ClearDisplayMessage(id=2))).status == "Unknown"
    assert await listed(rec, point, 7) == [1, 3]


async def test_messages_end_with_their_time_and_transaction_o01_o02(
    peer: tuple[Station, Recorder, Any],
) -> None:
    """O01: a message is gone once its endDateTime has passed; one whose startDateTime is
    ahead is configured meanwhile. O02: a message for a running transaction is Accepted
    and goes when that transaction ends."""
    station, rec, point = peer
    await station.start_transaction(1, "RFID-D")
    await rec.wait_for(lambda r: len(r.of("TransactionEvent")) >= 1)
    tx_id = rec.of("TransactionEvent")[0]["transaction_info"]["transaction_id"]
    assert await set_message(point, 1, transaction_id=tx_id) == "Accepted"
    assert await set_message(point, 2, end_date_time=iso(1.0)) == "Accepted"
    assert await set_message(point, 3, start_date_time=iso(3600)) == "Accepted"
    assert await listed(rec, point, 1) == [1, 2, 3]
    await asyncio.sleep(1.2)
    assert await listed(rec, point, 2) == [1, 3]
    await station.stop_transaction(1)
    assert await listed(rec, point, 3) == [3]
